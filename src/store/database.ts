import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Driver, type PostgresPool, type PostgresPoolClient } from "kysely";
import pg from "pg";
import { classifyDatabaseError, toDatabaseError } from "./errors.ts";
import { migrationProvider, migrations } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

export type Dialect = "sqlite" | "postgres";

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /**
   * Checks the database really answers (within `timeoutMs`, default `healthTimeoutMs`) and still
   * holds Sputnik's schema at the version this build migrated it to. Never throws.
   */
  ping(timeoutMs?: number): Promise<DatabaseHealth>;
  /** Closes the SQLite file or drains the PostgreSQL pool. */
  close(): Promise<void>;
}

/** What `Store.ping` found, as /health shows it. */
export interface DatabaseHealth {
  ok: boolean;
  dialect: Dialect;
  /** Round trip of the check, when the database answered. */
  latencyMs?: number;
  /** The latest migration recorded in the database (null: none, the tables are gone). */
  migration?: string | null;
  /** What is wrong, in words an operator can act on; absent when ok. */
  error?: string;
}

/** The slice of a pino logger the store uses; a pino `Logger` fits as is. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface OpenDatabaseOptions {
  /** `postgres://…` or `postgresql://…` for PostgreSQL; unset or empty for SQLite in `dataDir`. */
  url?: string;
  /** Where the SQLite file `sputnik.db` lives (created if missing). */
  dataDir: string;
  /** PostgreSQL only: the schema to use (created if missing, put first on the search_path). */
  schema?: string;
  /** PostgreSQL only: pool size (default 10). */
  poolSize?: number;
  /** PostgreSQL: opening a connection or waiting for a free one, at most (default 5 s). */
  connectTimeoutMs?: number;
  /** PostgreSQL: server-side `statement_timeout` of serving connections (default 30 s; 0 = none). */
  statementTimeoutMs?: number;
  /** PostgreSQL: client-side wait for a query's answer (default 35 s; 0 = none). */
  queryTimeoutMs?: number;
  /** PostgreSQL: unused pooled connections close after this (default 30 s; 0 = never). */
  idleTimeoutMs?: number;
  /** PostgreSQL: TCP keep-alive (default on). */
  keepAlive?: boolean;
  /** PostgreSQL: `application_name` (default "sputnik"). */
  applicationName?: string;
  /** SQLite: `busy_timeout` (default 5 s). */
  busyTimeoutMs?: number;
  /** Default time limit of `Store.ping` (default 2 s). */
  healthTimeoutMs?: number;
  logger?: StoreLogger;
  /**
   * Migrate only up to this migration (its name in migrations/index.ts) instead of the latest:
   * for tests of a later migration on data written at an earlier version. Opening again without
   * it migrates the rest.
   */
  migrateTo?: string;
}

export const SQLITE_FILE_NAME = "sputnik.db";
const DEFAULTS = {
  poolSize: 10,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 30_000,
  queryTimeoutMs: 35_000,
  idleTimeoutMs: 30_000,
  keepAlive: true,
  applicationName: "sputnik",
  busyTimeoutMs: 5_000,
  healthTimeoutMs: 2_000,
};
/** The migration this build brings a database to; a database at an older one lost its schema. */
const LATEST_MIGRATION = Object.keys(migrations).sort().at(-1) ?? null;

/** Opens the database and brings its schema to the latest migration. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Store> {
  const url = opts.url?.trim();
  if (url) {
    checkPostgresOptions(url, opts);
    const where = redactUrl(url);
    // Migrations run on a pool of their own, without the statement and query timeouts of serving:
    // a migration on a big table, or a replica waiting for another's migration lock, may rightly
    // take longer than any request should.
    const migrating = openPostgres(url, opts, "migrate");
    let schema: string;
    try {
      schema = await migratePostgres(migrating.store, where, opts);
    } finally {
      await migrating.store.close().catch(() => {});
    }
    return openPostgres(url, opts, "serve", schema).store;
  }
  const { store, conn, file } = openSqlite(opts);
  return migrateOrClose(store, () => migrateSqlite(store, conn, file, opts.logger, opts.migrateTo));
}

async function migrateOrClose(store: Store, migrate: () => Promise<void>): Promise<Store> {
  try {
    await migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

/**
 * Kysely's SQLite transactions start with a plain (deferred) BEGIN. In WAL mode a deferred
 * transaction that reads and then writes fails at once with SQLITE_BUSY — busy_timeout does not
 * apply — when another process (a `sputnik admin` command beside a running server) committed in
 * between, because its snapshot is stale. BEGIN IMMEDIATE takes the write lock first, so the other
 * process's commit is waited for (busy_timeout), never a failure. Within one process nothing
 * changes: the single connection already runs one transaction at a time.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw("begin immediate"));
    };
    return driver;
  }
}

function openSqlite(opts: OpenDatabaseOptions): { store: Store; conn: SqliteDatabase.Database; file: string } {
  if (opts.schema !== undefined) throw new Error("database option `schema` applies to PostgreSQL only");
  mkdirSync(opts.dataDir, { recursive: true });
  const file = resolve(opts.dataDir, SQLITE_FILE_NAME);
  let conn: SqliteDatabase.Database;
  try {
    conn = new SqliteDatabase(file);
  } catch (err) {
    throw new Error(`cannot open SQLite database ${file}: ${(err as Error).message}`, { cause: err });
  }
  // WAL lets readers run while one writer commits; NORMAL sync is durable across app crashes in WAL
  // mode (only an OS crash can lose the last commits). busy_timeout makes a second process wait for
  // the write lock instead of failing with SQLITE_BUSY.
  const mode = conn.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal") opts.logger?.warn({ file, mode }, "SQLite could not enable WAL mode on this filesystem");
  conn.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs}`);
  conn.pragma("foreign_keys = ON");
  conn.pragma("synchronous = NORMAL");
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: conn }) });
  const health = new HealthLog("sqlite", opts.logger);
  const ping = async (): Promise<DatabaseHealth> => {
    const started = performance.now();
    try {
      // Synchronous on one local file: there is no network to wait on, so no timeout either.
      const table = conn.prepare("select 1 from sqlite_master where type = 'table' and name = 'kysely_migration'").get();
      const migration = table ? ((conn.prepare("select max(name) as name from kysely_migration").get() as { name: string | null }).name ?? null) : null;
      return health.report(checkMigration("sqlite", migration, performance.now() - started, file));
    } catch (err) {
      return health.report({ ok: false, dialect: "sqlite", error: `SQLite database ${file}: ${describe(err)}` });
    }
  };
  return { store: { db, dialect: "sqlite", ping, close: () => db.destroy() }, conn, file };
}

function checkPostgresOptions(url: string, opts: OpenDatabaseOptions): void {
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    throw new Error(
      `unsupported database URL ${redactUrl(url)}: use postgres://… or postgresql://…, or leave it unset for SQLite in the data directory`,
    );
  }
  if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
    throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(opts.schema)}: use lowercase letters, digits and _`);
  }
}

/**
 * A pool for migrating (`migrate`: small, no statement or query timeouts) or for serving
 * (`serve`: every wait bounded, every connection failure a DatabaseUnavailableError).
 */
function openPostgres(url: string, opts: OpenDatabaseOptions, use: "migrate" | "serve", schema?: string): { store: Store; pool: pg.Pool } {
  const where = redactUrl(url);
  const statementTimeout = opts.statementTimeoutMs ?? DEFAULTS.statementTimeoutMs;
  const queryTimeout = opts.queryTimeoutMs ?? DEFAULTS.queryTimeoutMs;
  const pool = new pg.Pool({
    connectionString: url,
    max: use === "migrate" ? 2 : (opts.poolSize ?? DEFAULTS.poolSize),
    application_name: opts.applicationName ?? DEFAULTS.applicationName,
    types: pgTypes,
    // Without it, connecting to a port that accepts and never answers waits forever.
    connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    idleTimeoutMillis: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
    keepAlive: opts.keepAlive ?? DEFAULTS.keepAlive,
    ...(use === "serve" && statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
    ...(use === "serve" && queryTimeout > 0 ? { query_timeout: queryTimeout } : {}),
    // search_path set at connection start applies to every pooled connection, including the ones the
    // migrator and transactions use.
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // A pooled connection can die at any time (server restart, pg_terminate_backend, network), idle or
  // in the middle of a query. node-postgres then emits 'error' on the client, and for an idle one on
  // the pool too; an 'error' event nobody listens to kills the process. The query in flight fails on
  // its own (and becomes a 503), and the pool replaces dead connections on next use.
  pool.on("connect", (client) => {
    client.on("error", (err) => opts.logger?.warn({ err: { message: err.message, code: (err as { code?: string }).code }, database: where }, "PostgreSQL connection lost"));
  });
  pool.on("error", () => {
    // already logged by the client's own listener above
  });
  if (use === "migrate") {
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { store: { db, dialect: "postgres", ping: async () => ({ ok: true, dialect: "postgres" }), close: () => db.destroy() }, pool };
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: servingPool(pool) }) });
  const health = new HealthLog("postgres", opts.logger);
  const healthTimeout = opts.healthTimeoutMs ?? DEFAULTS.healthTimeoutMs;
  const store: Store = {
    db,
    dialect: "postgres",
    ping: async (timeoutMs = healthTimeout) => health.report(await pingPostgres(pool, schema ?? "public", where, timeoutMs)),
    close: () => db.destroy(),
  };
  return { store, pool };
}

/**
 * The pool as Kysely sees it, with two additions: a connection failure (refused, dropped, timed out)
 * comes out as a DatabaseUnavailableError, which callers and HTTP treat as "retry later"; and a
 * connection whose query hit the client-side timeout is thrown away when released — the query may
 * still be running (or the server hung), so the connection cannot serve anyone else.
 */
function servingPool(pool: pg.Pool): PostgresPool {
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw toDatabaseError(err);
      }
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        let broken = false;
        wrapper = {
          query: ((text: unknown, parameters?: readonly unknown[]) => {
            // Kysely passes a cursor object for streamed selects: hand it over untouched.
            if (typeof text !== "string") return client.query(text as never);
            return client.query(text, parameters as unknown[]).catch((err: unknown) => {
              if (classifyDatabaseError(err)) broken = true;
              throw toDatabaseError(err);
            });
          }) as unknown as PostgresPoolClient["query"],
          release: (destroy?: boolean) => {
            const discard = destroy === true || broken;
            broken = false;
            if (discard) wrappers.delete(client);
            client.release(discard);
          },
        };
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    end: () => pool.end(),
  };
}

/**
 * `select 1`, plus: is Sputnik's migration table still there and at this build's version? A
 * database re-created empty (or restored from an old backup) answers pings but has no tables.
 */
async function pingPostgres(pool: pg.Pool, schema: string, where: string, timeoutMs: number): Promise<DatabaseHealth> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  const check = (async () => {
    const client = await pool.connect();
    let failure: Error | undefined;
    try {
      const queryTimeout = Math.max(1, Math.ceil(deadline - performance.now()));
      const table = `${quoteIdent(schema)}.kysely_migration`;
      // node-postgres honours a per-query `query_timeout`; its types do not list it.
      const present: pg.QueryConfig = { text: "select to_regclass($1) is not null as present", values: [table], query_timeout: queryTimeout } as pg.QueryConfig;
      const { rows } = await client.query<{ present: boolean }>(present);
      let migration: string | null = null;
      if (rows[0]?.present) {
        const latest: pg.QueryConfig = { text: `select max(name) as name from ${table}`, query_timeout: queryTimeout } as pg.QueryConfig;
        migration = (await client.query<{ name: string | null }>(latest)).rows[0]?.name ?? null;
      }
      return checkMigration("postgres", migration, performance.now() - started, `${where} (schema ${schema})`);
    } catch (err) {
      failure = err as Error;
      throw err;
    } finally {
      // A failed check may have left the connection hung or dead: never reuse it.
      client.release(failure);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  // When the timer wins, the check still ends on its own (bounded by the connect and query
  // timeouts) and releases its connection; its late failure is of no interest.
  check.catch(() => {});
  try {
    return await Promise.race([check, timeout]);
  } catch (err) {
    return { ok: false, dialect: "postgres", error: `PostgreSQL at ${where} is unreachable: ${describe(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

function checkMigration(dialect: Dialect, migration: string | null, latencyMs: number, where: string): DatabaseHealth {
  const base = { dialect, latencyMs: Math.round(latencyMs * 10) / 10, migration };
  if (migration === null) {
    return {
      ...base,
      ok: false,
      error: `the database at ${where} answers but holds no Sputnik tables (no kysely_migration table): it was re-created or restored empty; restart Sputnik to create them, or restore the data`,
    };
  }
  if (LATEST_MIGRATION !== null && migration < LATEST_MIGRATION) {
    return {
      ...base,
      ok: false,
      error: `the database at ${where} is at migration ${migration}, older than the ${LATEST_MIGRATION} this Sputnik migrated it to: it was replaced or restored from an older backup`,
    };
  }
  return { ...base, ok: true };
}

/** Logs the database's health when it changes (not at every /health poll). */
class HealthLog {
  private healthy = true;
  private lastError: string | undefined;

  constructor(
    private readonly dialect: Dialect,
    private readonly logger: StoreLogger | undefined,
  ) {}

  report(health: DatabaseHealth): DatabaseHealth {
    if (!health.ok && health.error !== this.lastError) this.logger?.error({ database: this.dialect, reason: health.error }, "database check failed");
    if (health.ok && !this.healthy) this.logger?.info({ database: this.dialect }, "database check passes again");
    this.healthy = health.ok;
    this.lastError = health.ok ? undefined : health.error;
    return health;
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * On PostgreSQL, Kysely's migrator runs the migrations in one transaction under an advisory lock, so
 * replicas starting together take turns and a failed migration leaves nothing behind.
 */
async function migratePostgres(store: Store, where: string, opts: OpenDatabaseOptions): Promise<string> {
  let schema: string | null | undefined;
  try {
    if (opts.schema) await createSchema(store, opts.schema);
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(store.db);
    schema = rows[0]?.schema;
  } catch (err) {
    throw new Error(`cannot use PostgreSQL at ${where}: ${explainConnectError(err, opts)}`, { cause: err });
  }
  if (!schema) throw new Error(`PostgreSQL at ${where} has no schema on its search_path to create tables in`);
  // Kysely looks for its migration table in every schema unless told which one; name ours so a
  // kysely_migration table in another schema of the same database is never mistaken for it.
  const migrator = new Migrator({ db: withSchemaIntrospection(store.db, schema), provider: migrationProvider, migrationTableSchema: schema });
  await runMigrator(migrator, where, opts.logger, opts.migrateTo);
  return schema;
}

/**
 * Kysely's Migrator asks `db.introspection` whether its two tables exist, and the PostgreSQL
 * introspector answers by reading every column of every table in every schema, calling
 * pg_get_serial_sequence on each. That costs time growing with the whole database, and it fails
 * when another process drops or alters its own schema mid-query (`column … does not exist`, from a
 * catalog row the query saw a moment before). The Migrator only needs table names in one schema,
 * so give it an introspector that reads exactly that.
 */
function withSchemaIntrospection(db: Kysely<Database>, schema: string): Kysely<Database> {
  const tables = async () => {
    const { rows } = await sql<{ name: string }>`
      select c.relname as name from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${schema} and c.relkind in ('r', 'p', 'v')`.execute(db);
    return rows.map((r) => ({ name: r.name, schema, isView: false, columns: [] }));
  };
  const introspection = {
    getSchemas: async () => {
      const { rows } = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace where nspname = ${schema}`.execute(db);
      return rows;
    },
    getTables: tables,
    getMetadata: async () => ({ tables: await tables() }),
  };
  // Kysely's methods read private fields, so everything but `introspection` is bound to the real one.
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "introspection") return introspection;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function createSchema(store: Store, schema: string): Promise<void> {
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(store.db);
  } catch (err) {
    // IF NOT EXISTS is not atomic: when two replicas race, the loser gets a unique violation on
    // pg_namespace, which only means the schema is there now.
    if ((err as { code?: string }).code !== "23505") throw err;
  }
}

/**
 * Kysely runs SQLite migrations with neither a transaction nor a lock, so two processes starting
 * together would both apply them, and a failure would leave a half-migrated file. Wrap the whole run
 * in BEGIN IMMEDIATE instead: it takes the write lock up front (another process waits busy_timeout
 * for it) and a failure rolls everything back. Within this process, opens of the same file queue on
 * a promise chain, because a second synchronous BEGIN IMMEDIATE would block the thread the first one
 * needs to finish.
 */
async function migrateSqlite(store: Store, conn: SqliteDatabase.Database, file: string, logger?: StoreLogger, migrateTo?: string): Promise<void> {
  const previous = sqliteMigrations.get(file) ?? Promise.resolve();
  const mine = previous.then(async () => {
    try {
      conn.exec("BEGIN IMMEDIATE");
    } catch (err) {
      throw new Error(`cannot lock SQLite database ${file} to migrate it: ${describe(err)}`, { cause: err });
    }
    try {
      await runMigrator(new Migrator({ db: store.db, provider: migrationProvider }), file, logger, migrateTo);
      conn.exec("COMMIT");
    } catch (err) {
      if (conn.inTransaction) conn.exec("ROLLBACK");
      throw err;
    }
  });
  const settled = mine.catch(() => {});
  sqliteMigrations.set(file, settled);
  try {
    await mine;
  } finally {
    if (sqliteMigrations.get(file) === settled) sqliteMigrations.delete(file);
  }
}
const sqliteMigrations = new Map<string, Promise<void>>();

async function runMigrator(migrator: Migrator, where: string, logger?: StoreLogger, migrateTo?: string): Promise<void> {
  const { error, results } = migrateTo === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(migrateTo);
  for (const r of results ?? []) {
    if (r.status === "Success") logger?.info({ migration: r.migrationName }, "database migration applied");
  }
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(`database migration ${failed ? `${failed} ` : ""}failed (${where}): ${describe(error)}`, { cause: error });
  }
}

/**
 * pg returns int8 (bigint, COUNT(*)) and numeric (SUM of bigint) as strings, since they can exceed
 * 2^53. Our bigints are milliseconds and micro-units, far below that, and SQLite hands back numbers,
 * so parse them to numbers — for this pool only, not via pg's process-wide type registry. A whole
 * number too large to be exact is an error rather than a silently wrong value.
 */
const pgTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === INT8_OID || oid === NUMERIC_OID) return parseExactNumber;
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};
const INT8_OID = 20;
const NUMERIC_OID = 1700;

function parseExactNumber(text: string): number {
  const n = Number(text);
  if (/^-?\d+$/.test(text) && !Number.isSafeInteger(n)) {
    throw new RangeError(`integer ${text} from PostgreSQL is too large to represent exactly in JavaScript`);
  }
  return n;
}

/** Hides the password in a connection URL so it can appear in errors and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

/** A connection failure at start, said so the operator knows which setting bounded the wait. */
function explainConnectError(err: unknown, opts: OpenDatabaseOptions): string {
  const text = describe(err);
  if (/timeout/i.test(text) && classifyDatabaseError(err)) {
    return `no answer within ${opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs} ms (database.connectTimeoutMs): is this a PostgreSQL server, and is it up? (${text})`;
  }
  return text;
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { migrationProvider } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

export type Dialect = "sqlite" | "postgres";

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Closes the SQLite file or drains the PostgreSQL pool. */
  close(): Promise<void>;
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
  /** PostgreSQL only: pool size. */
  poolSize?: number;
  logger?: StoreLogger;
}

export const SQLITE_FILE_NAME = "sputnik.db";
const BUSY_TIMEOUT_MS = 5000;

/** Opens the database and brings its schema to the latest migration. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Store> {
  const url = opts.url?.trim();
  if (url) {
    const store = openPostgres(url, opts);
    return migrateOrClose(store, () => migratePostgres(store, redactUrl(url), opts));
  }
  const { store, conn, file } = openSqlite(opts);
  return migrateOrClose(store, () => migrateSqlite(store, conn, file, opts.logger));
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
  conn.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  conn.pragma("foreign_keys = ON");
  conn.pragma("synchronous = NORMAL");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  return { store: { db, dialect: "sqlite", close: () => db.destroy() }, conn, file };
}

function openPostgres(url: string, opts: OpenDatabaseOptions): Store {
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    throw new Error(
      `unsupported database URL ${redactUrl(url)}: use postgres://… or postgresql://…, or leave it unset for SQLite in the data directory`,
    );
  }
  if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
    throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(opts.schema)}: use lowercase letters, digits and _`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    application_name: "sputnik",
    types: pgTypes,
    // search_path set at connection start applies to every pooled connection, including the ones the
    // migrator and transactions use.
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle pooled connection can die (server restart, network); pg then emits 'error' on the pool,
  // which would crash the process if nobody listened. The pool replaces the connection on next use.
  pool.on("error", (err) => opts.logger?.error({ err }, "PostgreSQL idle connection error"));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: "postgres", close: () => db.destroy() };
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * On PostgreSQL, Kysely's migrator runs the migrations in one transaction under an advisory lock, so
 * replicas starting together take turns and a failed migration leaves nothing behind.
 */
async function migratePostgres(store: Store, where: string, opts: OpenDatabaseOptions): Promise<void> {
  let schema: string | null | undefined;
  try {
    if (opts.schema) await createSchema(store, opts.schema);
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(store.db);
    schema = rows[0]?.schema;
  } catch (err) {
    throw new Error(`cannot use PostgreSQL at ${where}: ${describe(err)}`, { cause: err });
  }
  if (!schema) throw new Error(`PostgreSQL at ${where} has no schema on its search_path to create tables in`);
  // Kysely looks for its migration table in every schema unless told which one; name ours so a
  // kysely_migration table in another schema of the same database is never mistaken for it.
  const migrator = new Migrator({ db: store.db, provider: migrationProvider, migrationTableSchema: schema });
  for (let attempt = 1; ; attempt++) {
    try {
      return await runMigrator(migrator, where, opts.logger);
    } catch (err) {
      // Kysely's introspector reads the catalog of every schema; another process dropping its own
      // schema at that moment makes the query fail with 3F000 naming that schema. Nothing of ours
      // was touched (the run is one transaction), so trying again is safe.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const otherSchemaVanished = cause?.code === "3F000" && !cause.message?.includes(`"${schema}"`);
      if (!otherSchemaVanished || attempt >= 5) throw err;
    }
  }
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
async function migrateSqlite(store: Store, conn: SqliteDatabase.Database, file: string, logger?: StoreLogger): Promise<void> {
  const previous = sqliteMigrations.get(file) ?? Promise.resolve();
  const mine = previous.then(async () => {
    try {
      conn.exec("BEGIN IMMEDIATE");
    } catch (err) {
      throw new Error(`cannot lock SQLite database ${file} to migrate it: ${describe(err)}`, { cause: err });
    }
    try {
      await runMigrator(new Migrator({ db: store.db, provider: migrationProvider }), file, logger);
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

async function runMigrator(migrator: Migrator, where: string, logger?: StoreLogger): Promise<void> {
  const { error, results } = await migrator.migrateToLatest();
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

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

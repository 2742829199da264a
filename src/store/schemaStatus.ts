/**
 * Which schema version a database is at, compared with this build's migrations — read WITHOUT
 * migrating (openDatabase migrates on open, which is exactly what a check, a backup or a restore
 * must not do). Used by `sputnik db check`, `sputnik backup` and `sputnik restore`.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import SqliteDatabase from "better-sqlite3";
import pg from "pg";
import { ServiceError } from "../errors.ts";
import { redactUrl, SQLITE_FILE_NAME, type Dialect } from "./database.ts";
import { migrations } from "./migrations/index.ts";

export interface SchemaStatus {
  /** Migrations recorded in the database, in order; null when it holds no `kysely_migration` table. */
  applied: string[] | null;
  /** The latest migration recorded in the database (its schema version). */
  current: string | null;
  /** The latest migration this build knows. */
  latest: string | null;
  /** Known to this build, not yet applied: an older database (the next `sputnik serve` applies them). */
  pending: string[];
  /** Applied, but unknown to this build: the database was migrated by a newer Sputnik. */
  unknown: string[];
  /** Exactly this build's schema. */
  ok: boolean;
}

/** Compares the migrations a database recorded with this build's. */
export function compareMigrations(applied: string[] | null, known: readonly string[] = Object.keys(migrations)): SchemaStatus {
  const buildNames = [...known].sort();
  const latest = buildNames.at(-1) ?? null;
  if (applied === null) return { applied: null, current: null, latest, pending: buildNames, unknown: [], ok: false };
  const sorted = [...applied].sort();
  const have = new Set(sorted);
  const knownSet = new Set(buildNames);
  const pending = buildNames.filter((name) => !have.has(name));
  const unknown = sorted.filter((name) => !knownSet.has(name));
  return { applied: sorted, current: sorted.at(-1) ?? null, latest, pending, unknown, ok: pending.length === 0 && unknown.length === 0 };
}

/** One line an operator can act on. */
export function describeSchemaStatus(status: SchemaStatus): string {
  if (status.applied === null) return "holds no Sputnik tables (no kysely_migration table): not a Sputnik database, or never started";
  if (status.unknown.length > 0) {
    return `schema ${status.current} is NEWER than this build (latest ${status.latest}): unknown migrations ${status.unknown.join(", ")} — run the Sputnik version that wrote it`;
  }
  if (status.pending.length > 0) {
    return `schema ${status.current ?? "(empty)"} is older than this build (latest ${status.latest}): pending migrations ${status.pending.join(", ")} — the next \`sputnik serve\` applies them`;
  }
  return `schema ${status.current} matches this build`;
}

/** The migrations recorded in an open SQLite file (inside the caller's transaction, if any). */
export function sqliteAppliedMigrations(conn: SqliteDatabase.Database): string[] | null {
  const table = conn.prepare("select 1 from sqlite_master where type = 'table' and name = 'kysely_migration'").get();
  if (!table) return null;
  return (conn.prepare("select name from kysely_migration order by name").all() as Array<{ name: string }>).map((r) => r.name);
}

export function sqliteFileOf(dataDir: string): string {
  return resolve(dataDir, SQLITE_FILE_NAME);
}

export interface DatabaseTarget {
  /** `postgres://…`; unset or empty for SQLite in `dataDir`. */
  url?: string;
  dataDir: string;
  /** PostgreSQL: the configured schema (`database.schema`); unset: the server's search_path. */
  schema?: string;
  connectTimeoutMs?: number;
  applicationName?: string;
}

export interface SchemaReport {
  dialect: Dialect;
  /** The SQLite file, or the redacted URL and schema. */
  where: string;
  status: SchemaStatus;
}

/** Reads the schema version of the configured database, never changing it. */
export async function checkDatabaseSchema(target: DatabaseTarget): Promise<SchemaReport> {
  const url = target.url?.trim();
  if (url) return checkPostgres(url, target);
  const file = sqliteFileOf(target.dataDir);
  if (!existsSync(file)) {
    throw new ServiceError("not_found", `no SQLite database at ${file} (is --data-dir right? the first \`sputnik serve\` creates it)`, { code: "no_database" });
  }
  // Read-write (never written): a read-only connection cannot build the WAL index a running server
  // may not have created yet. The read runs in WAL mode beside a server without blocking it.
  const conn = new SqliteDatabase(file, { fileMustExist: true });
  try {
    return { dialect: "sqlite", where: file, status: compareMigrations(sqliteAppliedMigrations(conn)) };
  } finally {
    conn.close();
  }
}

async function checkPostgres(url: string, target: DatabaseTarget): Promise<SchemaReport> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: target.connectTimeoutMs ?? 5_000,
    application_name: target.applicationName ?? "sputnik",
  });
  // A socket error after end() must not crash the CLI.
  client.on("error", () => {});
  const where = redactUrl(url);
  try {
    await client.connect();
  } catch (err) {
    throw new ServiceError("unavailable", `cannot reach PostgreSQL at ${where}: ${(err as Error).message}`, { code: "database_unavailable", cause: err });
  }
  try {
    // The same schema `sputnik serve` migrates: the configured one, else the first on the search_path.
    const { rows } = await client.query<{ schema: string | null }>("select coalesce($1::text, current_schema()) as schema", [target.schema ?? null]);
    const schema = rows[0]?.schema;
    if (!schema) throw new ServiceError("not_found", `PostgreSQL at ${where} has no schema on its search_path`, { code: "no_database" });
    const table = `${quoteIdent(schema)}.kysely_migration`;
    const present = (await client.query<{ present: boolean }>("select to_regclass($1) is not null as present", [table])).rows[0]?.present;
    const applied = present ? (await client.query<{ name: string }>(`select name from ${table} order by name`)).rows.map((r) => r.name) : null;
    return { dialect: "postgres", where: `${where} (schema ${schema})`, status: compareMigrations(applied) };
  } finally {
    await client.end().catch(() => {});
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Online backup and restore of the SQLite database (`sputnik backup`, `sputnik restore`).
 *
 * Backup uses SQLite's backup API (better-sqlite3's `db.backup`) from a connection of its own, so
 * it runs beside a serving process (WAL mode: readers never block the writer). Restore refuses
 * while any other process has the database open, checks the file first, and keeps the replaced
 * database. Only the database is copied: the disk context cache (`<dataDir>/context-cache`) is a
 * cache, rebuilt as requests come, and the models directory can be pulled again.
 *
 * PostgreSQL databases are backed up with PostgreSQL's own tools (pg_dump / pg_restore; see
 * `postgresBackupAdvice`), and `sputnik db check` tells whether a restored one fits this build.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { ServiceError } from "../errors.ts";
import { redactUrl } from "./database.ts";
import { compareMigrations, describeSchemaStatus, sqliteAppliedMigrations, sqliteFileOf, type SchemaStatus } from "./schemaStatus.ts";

/** Pages copied per step of the backup API (4 KiB each): big steps, few event-loop turns. */
const PAGES_PER_STEP = 4096;
/** The sidecar files SQLite keeps next to a database file. */
const SIDECARS = ["-wal", "-shm", "-journal"] as const;

export interface BackupResult {
  /** The database that was copied. */
  source: string;
  /** The backup file written. */
  file: string;
  bytes: number;
  status: SchemaStatus;
  /** Just before the snapshot was taken: the backup holds everything committed by then. */
  snapshotAt: number;
  durationMs: number;
}

/**
 * Copies the data directory's database to `target` while a server may be writing to it.
 *
 * Consistency: the source connection opens a read transaction first and keeps it for the whole
 * copy. In WAL mode that pins one snapshot (committed pages in the main file plus the WAL frames
 * committed before it), and the backup API reads through it. Without it, the backup API restarts
 * from page one whenever another process commits, and under a steady load never finishes.
 *
 * The copy is written to a temp file beside `target`, switched to a self-contained rollback journal
 * (no -wal file to forget when copying it on), checked with `PRAGMA integrity_check`, synced, and
 * only then renamed to `target`: a crash or a failed check never leaves a half-written backup there.
 */
export async function backupSqlite(opts: {
  dataDir: string;
  target: string;
  /** Replace `target` when it exists (default: refuse). */
  overwrite?: boolean;
  /** How long to wait for a lock held by a writer (SQLite `busy_timeout`). */
  busyTimeoutMs?: number;
  now?: () => number;
}): Promise<BackupResult> {
  const now = opts.now ?? Date.now;
  const started = performance.now();
  const source = sqliteFileOf(opts.dataDir);
  const file = resolve(opts.target);
  if (!existsSync(source)) {
    throw new ServiceError("not_found", `no SQLite database at ${source} (is --data-dir right?)`, { code: "no_database" });
  }
  if (sameFile(file, source)) throw new ServiceError("invalid_request", "the backup file cannot be the database itself", { code: "invalid_target" });
  if (existsSync(file) && !opts.overwrite) {
    throw new ServiceError("conflict", `${file} already exists (pass --force to replace it)`, { code: "target_exists" });
  }
  if (!existsSync(dirname(file))) throw new ServiceError("not_found", `the folder ${dirname(file)} does not exist`, { code: "no_folder" });

  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  let status: SchemaStatus;
  let snapshotAt: number;
  try {
    const conn = new SqliteDatabase(source, { fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5_000 });
    try {
      conn.exec("BEGIN");
      // Read the clock first: whatever committed before this instant is in the snapshot that the
      // first read, next, starts (from then on this connection sees that one state).
      snapshotAt = now();
      status = compareMigrations(sqliteAppliedMigrations(conn));
      if (status.applied === null) {
        throw new ServiceError("unprocessable", `${source} ${describeSchemaStatus(status)}`, { code: "not_sputnik_database" });
      }
      await conn.backup(tmp, { progress: () => PAGES_PER_STEP });
      conn.exec("COMMIT");
    } finally {
      if (conn.inTransaction) conn.exec("ROLLBACK");
      conn.close();
    }
    const integrity = finishCopy(tmp);
    if (integrity.length > 0) {
      throw new ServiceError("internal", `the copy of ${source} failed its integrity check: ${integrity.join("; ")}`, { code: "integrity_check_failed" });
    }
    await fsyncPath(tmp);
    await rename(tmp, file);
    await fsyncPath(dirname(file));
  } catch (error) {
    await removeWithSidecars(tmp);
    throw error;
  }
  return { source, file, bytes: (await stat(file)).size, status, snapshotAt, durationMs: Math.round(performance.now() - started) };
}

export interface InspectedBackup {
  file: string;
  bytes: number;
  /** `PRAGMA integrity_check` problems; empty when it answered "ok". */
  problems: string[];
  status: SchemaStatus;
}

/** Checks a backup file without changing it: integrity and schema version. */
export async function inspectSqliteBackup(path: string): Promise<InspectedBackup> {
  const file = resolve(path);
  if (!existsSync(file)) throw new ServiceError("not_found", `no such file: ${file}`, { code: "no_backup" });
  let conn: SqliteDatabase.Database;
  try {
    conn = new SqliteDatabase(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw notADatabase(file, error);
  }
  try {
    const problems = integrityProblems(conn);
    const status = compareMigrations(sqliteAppliedMigrations(conn));
    return { file, bytes: (await stat(file)).size, problems, status };
  } catch (error) {
    throw notADatabase(file, error);
  } finally {
    conn.close();
  }
}

export interface RestoreResult {
  /** The database file now in place. */
  database: string;
  backup: InspectedBackup;
  /** Where the replaced database was kept; null when the data directory had none. */
  kept: string | null;
}

/**
 * Replaces the data directory's database with a backup.
 *
 * 1. The backup must pass `PRAGMA integrity_check` and hold Sputnik's schema at a version this
 *    build knows (older is fine: the next `sputnik serve` migrates it; newer is refused, since this
 *    build would run on tables it does not understand).
 * 2. No other process may have the live database open. SQLite itself tells: a running server holds
 *    its connection open, and in WAL mode (which every Sputnik server switches the file to) every
 *    open connection holds a shared lock, so switching the file out of WAL mode fails with
 *    SQLITE_BUSY until the last other connection closes. The lock the OS keeps for a live process
 *    dies with it: unlike a pid file, nothing stale is left behind by a crash. The switch also folds
 *    the WAL into the main file, and an exclusive lock is then held until the swap is done.
 * 3. The backup is copied into the data directory (backup API again, so a backup left in WAL mode
 *    with its -wal file still comes over whole) as a temp file, made self-contained and checked.
 * 4. The old file is kept as `<db>.before-restore-<timestamp>` (a hard link, so the database path
 *    never goes missing for a moment) and the temp file is renamed over the database.
 *
 * `force` skips step 2, for a database too damaged to open; only when no server runs.
 */
export async function restoreSqlite(opts: { dataDir: string; source: string; force?: boolean; now?: () => number }): Promise<RestoreResult> {
  const now = opts.now ?? Date.now;
  const database = sqliteFileOf(opts.dataDir);
  const backup = await inspectSqliteBackup(opts.source);
  if (sameFile(backup.file, database)) throw new ServiceError("invalid_request", "the backup file is the database itself", { code: "invalid_source" });
  if (backup.problems.length > 0) {
    throw new ServiceError("unprocessable", `${backup.file} fails PRAGMA integrity_check: ${backup.problems.slice(0, 5).join("; ")}`, { code: "integrity_check_failed" });
  }
  if (backup.status.applied === null || backup.status.unknown.length > 0) {
    throw new ServiceError("unprocessable", `${backup.file} ${describeSchemaStatus(backup.status)}`, { code: "schema_mismatch" });
  }
  await mkdir(dirname(database), { recursive: true });
  const tmp = join(dirname(database), `.${basename(database)}.restore-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  // Taken before the copy: a refusal costs nothing, and no server can start on the old file meanwhile.
  const lock = opts.force || !existsSync(database) ? null : lockForRestore(database);
  try {
    const conn = new SqliteDatabase(backup.file, { readonly: true, fileMustExist: true });
    try {
      await conn.backup(tmp, { progress: () => PAGES_PER_STEP });
    } finally {
      conn.close();
    }
    const problems = finishCopy(tmp);
    if (problems.length > 0) throw new ServiceError("internal", `the copy of ${backup.file} failed its integrity check: ${problems.join("; ")}`, { code: "integrity_check_failed" });
    await fsyncPath(tmp);

    if (!existsSync(database)) {
      for (const suffix of SIDECARS) {
        if (existsSync(database + suffix)) {
          throw new ServiceError("conflict", `${database + suffix} exists without its database: move it away first`, { code: "stray_sidecar" });
        }
      }
      await rename(tmp, database);
      await fsyncPath(dirname(database));
      return { database, backup, kept: null };
    }

    const kept = `${database}.before-restore-${fileStamp(now())}`;
    // After the switch out of WAL mode there are none; with `force` the old ones go with the old
    // file, before the new one arrives (SQLite would read an old -wal into the new file).
    for (const suffix of SIDECARS) {
      if (existsSync(database + suffix)) await rename(database + suffix, kept + suffix);
    }
    const linked = await link(database, kept).then(
      () => true,
      () => false,
    );
    // No hard links on this filesystem: move the old file away, then the new one in.
    if (!linked) await rename(database, kept);
    await rename(tmp, database);
    await fsyncPath(dirname(database));
    return { database, backup, kept };
  } finally {
    lock?.release();
    await removeWithSidecars(tmp);
  }
}

/** What `sputnik backup`/`restore` say on PostgreSQL: its own tools do it (and do it better). */
export function postgresBackupAdvice(url: string, schema?: string): string {
  const where = redactUrl(url);
  // Only on pg_dump: the dump then holds just that schema, and pg_restore's own --schema would
  // leave out the CREATE SCHEMA itself (tried: a restore into a database without it fails).
  const only = schema ? ` --schema=${schema}` : "";
  return (
    `this Sputnik uses PostgreSQL (${where}): back it up with PostgreSQL's own tools, which take a consistent snapshot while Sputnik runs:\n` +
    `  pg_dump --format=custom${only} --file=sputnik.dump "$SPUTNIK_DATABASE_URL"\n` +
    `and restore (Sputnik stopped) with:\n` +
    `  pg_restore --clean --if-exists --no-owner --dbname="$SPUTNIK_DATABASE_URL" sputnik.dump\n` +
    `then check the schema with: sputnik db check (see the README, "Backups")`
  );
}

/**
 * Takes the live database for the swap: refuses while another connection is open (see step 2 of
 * `restoreSqlite`), then holds an exclusive lock so no process starts on the old file meanwhile.
 */
function lockForRestore(file: string): { release(): void } {
  const inUse = () =>
    new ServiceError(
      "conflict",
      `${file} is in use by another process (a running \`sputnik serve\`?): stop it, then restore`,
      { code: "database_in_use" },
    );
  let conn: SqliteDatabase.Database;
  try {
    conn = new SqliteDatabase(file, { fileMustExist: true, timeout: 1_000 });
  } catch (error) {
    throw cannotCheck(file, error);
  }
  try {
    const mode = conn.pragma("journal_mode", { simple: true });
    // A file in rollback mode was last closed by something other than a server (which switches
    // every file it opens to WAL) — a restore, say — so nobody is serving on it.
    if (mode === "wal" && conn.pragma("journal_mode = DELETE", { simple: true }) !== "delete") throw inUse();
    conn.pragma("locking_mode = EXCLUSIVE");
    conn.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    conn.close();
    if (error instanceof ServiceError) throw error;
    if ((error as { code?: string }).code?.startsWith("SQLITE_BUSY") || (error as { code?: string }).code?.startsWith("SQLITE_LOCKED")) throw inUse();
    throw cannotCheck(file, error);
  }
  return {
    release: () => {
      if (conn.inTransaction) conn.exec("ROLLBACK");
      conn.close();
    },
  };
}

function cannotCheck(file: string, error: unknown): ServiceError {
  return new ServiceError(
    "unprocessable",
    `cannot open ${file} to check that no server uses it (${(error as Error).message}); if no server runs on this data directory, pass --force`,
    { code: "database_unreadable", cause: error },
  );
}

function notADatabase(file: string, error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  return new ServiceError("unprocessable", `${file} is not a readable SQLite database: ${(error as Error).message}`, { code: "not_a_database", cause: error });
}

/** Makes a fresh copy one self-contained file (rollback journal, no -wal) and checks it. */
function finishCopy(file: string): string[] {
  const conn = new SqliteDatabase(file, { fileMustExist: true });
  try {
    conn.pragma("journal_mode = DELETE");
    return integrityProblems(conn);
  } finally {
    conn.close();
  }
}

function integrityProblems(conn: SqliteDatabase.Database): string[] {
  const rows = conn.pragma("integrity_check") as Array<{ integrity_check: string }>;
  const lines = rows.map((r) => r.integrity_check);
  return lines.length === 1 && lines[0] === "ok" ? [] : lines;
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function removeWithSidecars(file: string): Promise<void> {
  await Promise.all([file, ...SIDECARS.map((s) => file + s)].map((f) => rm(f, { force: true })));
}

function sameFile(a: string, b: string): boolean {
  return resolve(a) === resolve(b);
}

/** 2025-03-01T12:00:00.123Z → 20250301T120000123Z: sortable, no characters a shell or Windows minds. */
export function fileStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

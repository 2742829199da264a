/**
 * Backup and restore of the SQLite file, in-process (test/backup.test.ts runs them as the CLI beside
 * a serving process): what restore refuses, and what it keeps.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { ServiceError } from "../errors.ts";
import { backupSqlite, restoreSqlite } from "./backup.ts";
import { openDatabase } from "./database.ts";
import { recordRequest } from "./requestLog.ts";
import { compareMigrations } from "./schemaStatus.ts";

async function workDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sputnik-backup-unit-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A data dir whose database holds one request_log row per model name given. */
async function dataDirWith(dir: string, name: string, models: string[]): Promise<string> {
  const dataDir = join(dir, name);
  const store = await openDatabase({ dataDir });
  for (const model of models) await recordRequest(store.db, { model, engine: "local", status: 200 });
  await store.close();
  return dataDir;
}

function models(file: string): string[] {
  const conn = new SqliteDatabase(file, { readonly: true });
  try {
    return (conn.prepare("select model from request_log order by model").all() as Array<{ model: string }>).map((r) => r.model);
  } finally {
    conn.close();
  }
}

function refusal(kind: ServiceError["kind"], code: string, message: RegExp) {
  return (error: unknown) => error instanceof ServiceError && error.kind === kind && error.code === code && message.test(error.message);
}

test("compareMigrations tells pending, unknown and missing schemas apart", () => {
  const known = ["0001_a", "0100_b", "0200_c"];
  assert.deepEqual(compareMigrations(["0001_a", "0100_b", "0200_c"], known), { applied: known, current: "0200_c", latest: "0200_c", pending: [], unknown: [], ok: true });
  assert.deepEqual(compareMigrations(["0001_a"], known).pending, ["0100_b", "0200_c"]);
  const newer = compareMigrations(["0001_a", "0100_b", "0200_c", "0300_d"], known);
  assert.deepEqual([newer.ok, newer.current, newer.unknown], [false, "0300_d", ["0300_d"]]);
  assert.deepEqual(compareMigrations(null, known), { applied: null, current: null, latest: "0200_c", pending: known, unknown: [], ok: false });
});

test("restore refuses while another connection has the database open, then swaps and keeps the old one with its WAL commits", async (t) => {
  const dir = await workDir(t);
  const source = await dataDirWith(dir, "source", ["from-backup"]);
  const backup = await backupSqlite({ dataDir: source, target: join(dir, "backup.db") });
  assert.deepEqual([backup.status.ok, backup.bytes > 0], [true, true]);
  await assert.rejects(backupSqlite({ dataDir: source, target: join(dir, "backup.db") }), refusal("conflict", "target_exists", /already exists \(pass --force/));

  const live = await dataDirWith(dir, "live", ["old-row"]);
  // A server's connection: open, idle, its last commit still in the WAL.
  const server = await openDatabase({ dataDir: live });
  await recordRequest(server.db, { model: "old-wal-row", engine: "local", status: 200 });
  const before = await readdir(live);
  await assert.rejects(restoreSqlite({ dataDir: live, source: backup.file }), refusal("conflict", "database_in_use", /in use by another process/));
  assert.deepEqual(await readdir(live), before, "nothing moved, no temp file left");
  assert.deepEqual(await server.db.selectFrom("request_log").select("model").orderBy("model").execute(), [{ model: "old-row" }, { model: "old-wal-row" }]);
  // What a server killed with SIGKILL leaves: the file and a WAL whose last commit is nowhere else.
  const crashed = join(dir, "crashed");
  await mkdir(crashed);
  for (const f of ["sputnik.db", "sputnik.db-wal"]) await writeFile(join(crashed, f), await readFile(join(live, f)));
  await server.close();

  const restored = await restoreSqlite({ dataDir: crashed, source: backup.file, now: () => Date.parse("2025-03-01T12:00:00.123Z") });
  assert.equal(restored.kept, join(crashed, "sputnik.db.before-restore-20250301T120000123Z"));
  assert.deepEqual((await readdir(crashed)).sort(), ["sputnik.db", "sputnik.db.before-restore-20250301T120000123Z"], "one file each, no WAL left");
  assert.deepEqual(models(restored.database), ["from-backup"]);
  assert.deepEqual(models(restored.kept!), ["old-row", "old-wal-row"], "the kept file holds what was only in the WAL too");
  // The next server opens it as usual.
  const next = await openDatabase({ dataDir: crashed });
  assert.equal((await next.ping()).ok, true);
  await next.close();
});

test("restore refuses a damaged file, a newer schema and a database that is not Sputnik's, before touching the data dir", async (t) => {
  const dir = await workDir(t);
  const source = await dataDirWith(dir, "source", ["a", "b"]);
  const good = (await backupSqlite({ dataDir: source, target: join(dir, "good.db") })).file;
  const live = await dataDirWith(dir, "live", ["live-row"]);
  assert.deepEqual(models(join(live, "sputnik.db")), ["live-row"]);
  const files = await readdir(live);
  const untouched = async () => {
    assert.deepEqual(await readdir(live), files);
    assert.deepEqual(models(join(live, "sputnik.db")), ["live-row"]);
  };

  // Newer: a migration this build does not know.
  const newer = (await backupSqlite({ dataDir: source, target: join(dir, "newer.db") })).file;
  const conn = new SqliteDatabase(newer);
  conn.prepare("insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '')").run();
  conn.close();
  await assert.rejects(restoreSqlite({ dataDir: live, source: newer }), refusal("unprocessable", "schema_mismatch", /NEWER than this build .*9999_from_the_future/));
  await untouched();

  // Damaged: a b-tree page overwritten in the middle of the file.
  const damaged = join(dir, "damaged.db");
  await writeFile(damaged, await readFile(good));
  const handle = await open(damaged, "r+");
  await handle.write(Buffer.alloc(4096, 0x5a), 0, 4096, 4096 * 3);
  await handle.close();
  await assert.rejects(restoreSqlite({ dataDir: live, source: damaged }), (error: unknown) => error instanceof ServiceError && error.kind === "unprocessable");
  await untouched();

  // Not Sputnik's.
  const other = join(dir, "other.db");
  new SqliteDatabase(other).exec("create table notes (text)");
  await assert.rejects(restoreSqlite({ dataDir: live, source: other }), refusal("unprocessable", "schema_mismatch", /no Sputnik tables/));
  await assert.rejects(restoreSqlite({ dataDir: live, source: join(dir, "missing.db") }), refusal("not_found", "no_backup", /no such file/));
  await untouched();
});

test("restore --force replaces a live file too damaged to open; without it the refusal says why", async (t) => {
  const dir = await workDir(t);
  const source = await dataDirWith(dir, "source", ["good"]);
  const backup = (await backupSqlite({ dataDir: source, target: join(dir, "backup.db") })).file;
  const live = join(dir, "live");
  await mkdir(live);
  await writeFile(join(live, "sputnik.db"), "this is not a database, it was overwritten by mistake\n".repeat(200));
  await assert.rejects(restoreSqlite({ dataDir: live, source: backup }), refusal("unprocessable", "database_unreadable", /pass --force/));
  const restored = await restoreSqlite({ dataDir: live, source: backup, force: true });
  assert.deepEqual(models(restored.database), ["good"]);
  assert.ok(restored.kept && existsSync(restored.kept), "the damaged file is kept");
});

/**
 * `sputnik backup` / `restore` / `db check` as an operator runs them: the real CLI in its own
 * process, beside `sputnik serve` in another, on the same SQLite data directory.
 *
 * One server for the file. Every completion of the load records when its answer ended (the
 * settlement commits before the last byte: src/serving/completion.ts); every one that ended before
 * the backup's snapshot must be in the backup, found by its prompt size (each request's is unique).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import SqliteDatabase from "better-sqlite3";
import pg from "pg";
import { readLocalKey } from "../src/auth/localMode.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { openDatabase } from "../src/store/database.ts";
import { checkDatabaseSchema } from "../src/store/schemaStatus.ts";
import { startServeProcess, writeServeConfig, type ServeProcess } from "./support/serveProcess.ts";
import { postgresUrlOrSkip } from "./support/services.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));

let workDir: string;
let dataDir: string;
let configFile: string;
let server: ServeProcess;
let localKey: string;

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), "sputnik-backup-"));
  dataDir = join(workDir, "data");
  configFile = join(workDir, "config.json");
  await writeServeConfig(configFile, {
    dataDir,
    models: [await ensureModel("scripted")],
    parallel: 2,
    contextSize: 1024,
    // The load below sends as fast as answers come; the per-address default (120/min) would cut it.
    limits: { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 } },
  });
  server = await startServeProcess(configFile);
  // No account exists: /v1 answers this machine's user with the data directory's local key.
  localKey = (await readLocalKey(dataDir))!;
  assert.ok(localKey, "the first run wrote a local key");
});

after(async () => {
  server?.kill("SIGKILL");
  await server?.exited;
  await rm(workDir, { recursive: true, force: true });
});

function sputnik(args: string[]): Promise<{ code: number; stdout: string; stderr: string; exitedAt: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, SPUTNIK_GPU: "off" } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr, exitedAt: Date.now() }),
    );
  });
}

interface Done {
  promptTokens: number;
  completedAt: number;
}

/** Completions, `workers` at a time, each with a longer prompt than the last, until `stop()`. */
function startLoad(url: string, workers: number) {
  const done: Done[] = [];
  let next = 0;
  let stopped = false;
  const waiters: Array<() => void> = [];
  const worker = async () => {
    while (!stopped) {
      const i = next++;
      // Prompt sizes must stay unique and within the context: a few hundred requests at most.
      assert.ok(i < 600, "the load ran far longer than expected");
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${localKey}` },
        body: JSON.stringify({ model: "scripted", max_tokens: 8, messages: [{ role: "user", content: `Request ${"again ".repeat(i)}` }] }),
      });
      const body = (await response.json()) as { usage?: { prompt_tokens: number } };
      assert.equal(response.status, 200, JSON.stringify(body));
      done.push({ promptTokens: body.usage!.prompt_tokens, completedAt: Date.now() });
      for (const wake of waiters.splice(0)) wake();
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    done,
    /** Resolves once `n` completions have ended. */
    async completed(n: number): Promise<void> {
      while (done.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    async stop(): Promise<void> {
      stopped = true;
      await running;
    },
  };
}

let backupFile: string;
let backupRequestIds: string[];

test("a backup taken while completions run holds every one finished before its snapshot and passes integrity_check", async () => {
  const load = startLoad(server.url, 2);
  let backup: Awaited<ReturnType<typeof sputnik>>;
  let spawnedAt: number;
  try {
    await load.completed(6);
    // The server writes in WAL mode: committed requests sit in the -wal file until a checkpoint.
    assert.ok(statSync(join(dataDir, "sputnik.db-wal")).size > 0, "the server's WAL holds commits");
    backupFile = join(workDir, "backup.db");
    spawnedAt = Date.now();
    backup = await sputnik(["-c", configFile, "backup", backupFile]);
  } finally {
    await load.stop();
  }
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /^backed up .*sputnik\.db to .*backup\.db: [\d.]+ KiB, schema \d{4}_\w+ \(this build's\), integrity ok$/m);
  assert.match(backup.stdout, /not included: the disk context cache \(.*context-cache: a cache/);
  const snapshotAt = Date.parse(/^snapshot at (\S+) /m.exec(backup.stdout)![1]!);
  assert.ok(snapshotAt > spawnedAt && snapshotAt < backup.exitedAt, "the snapshot was taken by the CLI run");

  const prompts = load.done.map((d) => d.promptTokens);
  assert.equal(new Set(prompts).size, prompts.length, `each request's prompt size is unique: ${prompts}`);
  const before = load.done.filter((d) => d.completedAt < snapshotAt);
  const during = load.done.filter((d) => d.completedAt > spawnedAt && d.completedAt < backup.exitedAt);
  assert.ok(before.length >= 6, `${before.length} completions before the snapshot`);
  assert.ok(during.length >= 1, "the load ran on while the backup ran");

  // Read as-is (read-only): the file must be whole on its own, with no -wal beside it.
  const copy = new SqliteDatabase(backupFile, { readonly: true, fileMustExist: true });
  try {
    assert.deepEqual(copy.pragma("integrity_check"), [{ integrity_check: "ok" }]);
    assert.equal(copy.pragma("journal_mode", { simple: true }), "delete");
    const inBackup = copy.prepare("select id, prompt_tokens, status from request_log").all() as Array<{ id: string; prompt_tokens: number; status: number }>;
    backupRequestIds = inBackup.map((r) => r.id).sort();
    const settled = new Set((copy.prepare("select id from usage_ledger where status = 'completed'").all() as Array<{ id: string }>).map((r) => r.id));
    for (const d of before) {
      const row = inBackup.find((r) => r.prompt_tokens === d.promptTokens);
      assert.ok(row, `the request with ${d.promptTokens} prompt tokens, finished ${snapshotAt - d.completedAt} ms before the snapshot, is in the backup`);
      assert.equal(row.status, 200);
      assert.ok(settled.has(row.id), "with its settled ledger row");
    }
  } finally {
    copy.close();
  }
  assert.deepEqual((await readdir(workDir)).filter((f) => f.startsWith("backup.db") || f.includes(".tmp")), ["backup.db"], "no temp or -wal file left");
});

// Each CLI run is a fresh Node process (seconds on a busy machine): independent runs go together.

test("restore refuses while a server uses the data dir; into a fresh data dir it restores the backup", async () => {
  assert.ok(backupFile, "the backup test ran first");
  const files = await readdir(dataDir);
  const fresh = join(workDir, "fresh");
  const [refused, restored] = await Promise.all([sputnik(["-c", configFile, "restore", backupFile]), sputnik(["--data-dir", fresh, "restore", backupFile])]);

  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /sputnik\.db is in use by another process \(a running `sputnik serve`\?\): stop it, then restore/);
  assert.deepEqual(await readdir(dataDir), files, "nothing moved, nothing left behind");
  // The server never noticed.
  const models = await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${localKey}` } });
  assert.equal(models.status, 200);
  assert.ok(server.alive());

  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /^restored .*backup\.db into .*fresh\/sputnik\.db: .*integrity ok$/m);
  // Used as the next server would use it: opened, migrated (nothing to do), answering.
  const store = await openDatabase({ dataDir: fresh });
  try {
    const rows = await store.db.selectFrom("request_log").select(["id"]).execute();
    assert.deepEqual(rows.map((r) => r.id).sort(), backupRequestIds);
    assert.equal((await store.ping()).ok, true);
  } finally {
    await store.close();
  }
});

test("db check on SQLite: exit 0 on the restored database, exit 1 on one older than this build (naming what is pending)", async (t) => {
  const old = join(workDir, "old");
  const store = await openDatabase({ dataDir: old, migrateTo: "0300_billing" });
  await store.close();
  const [matches, older] = await Promise.all([sputnik(["--data-dir", join(workDir, "fresh"), "db", "check"]), sputnik(["--data-dir", old, "db", "check", "--json"])]);
  assert.deepEqual([matches.code, matches.stderr], [0, ""]);
  assert.match(matches.stdout, /^sqlite .*fresh\/sputnik\.db: schema \d{4}_\w+ matches this build$/m);
  assert.equal(older.code, 1);
  const report = JSON.parse(older.stdout) as { dialect: string; current: string; pending: string[]; unknown: string[]; ok: boolean };
  assert.deepEqual([report.dialect, report.current, report.ok, report.unknown], ["sqlite", "0300_billing", false, []]);
  assert.ok(report.pending.includes("0400_ledger_items"), report.pending.join());
  t.diagnostic(`pending: ${report.pending.join(", ")}`);
});

test("on PostgreSQL, db check compares the schema version (exit 1 when newer) and backup points to pg_dump", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const schemas: string[] = [];
  t.after(async () => {
    for (const schema of schemas) await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
  });
  const configFor = async (schema: string) => {
    schemas.push(schema);
    const store = await openDatabase({ url, schema, dataDir: workDir });
    await store.close();
    const file = join(workDir, `${schema}.json`);
    await writeFile(file, JSON.stringify({ dataDir: join(workDir, "pg-data"), databaseUrl: url, database: { schema } }));
    return file;
  };
  const current = `test_${randomBytes(8).toString("hex")}`;
  const future = `test_${randomBytes(8).toString("hex")}`;
  const [currentConfig, futureConfig] = await Promise.all([configFor(current), configFor(future)]);
  // A newer Sputnik migrated this one: this build must not run on it.
  await admin.query(`insert into "${future}".kysely_migration (name, timestamp) values ('9999_from_the_future', now()::text)`);

  // What `db check` reads, in-process (its exit 0 is tested on SQLite above); the CLI runs for the rest.
  const ok = await checkDatabaseSchema({ url, dataDir: workDir, schema: current });
  assert.deepEqual([ok.dialect, ok.status.ok, ok.status.current, ok.status.pending, ok.status.unknown], ["postgres", true, ok.status.latest, [], []]);
  assert.match(ok.where, new RegExp(` \\(schema ${current}\\)$`));
  const [newer, refused] = await Promise.all([sputnik(["-c", futureConfig, "db", "check"]), sputnik(["-c", currentConfig, "backup", join(workDir, "pg.db")])]);
  assert.equal(newer.code, 1);
  assert.match(newer.stdout, /^postgres .*: schema 9999_from_the_future is NEWER than this build .*unknown migrations 9999_from_the_future/);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /`sputnik backup` works on SQLite only; this Sputnik uses PostgreSQL/);
  assert.match(refused.stderr, new RegExp(`pg_dump --format=custom --schema=${current} --file=sputnik\\.dump`));
  assert.equal(existsSync(join(workDir, "pg.db")), false);
});

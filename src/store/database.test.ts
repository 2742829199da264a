import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import SqliteDatabase from "better-sqlite3";
import { sql } from "kysely";
import pg from "pg";
import { forEachDatabase, openTestStore } from "../../test/support/databases.ts";
import { postgresUrlOrSkip } from "../../test/support/services.ts";
import { openDatabase, redactUrl, SQLITE_FILE_NAME, type OpenDatabaseOptions } from "./database.ts";
import { DatabaseUnavailableError } from "./errors.ts";
import { migrations } from "./migrations/index.ts";

const MIGRATION_NAMES = Object.keys(migrations);

forEachDatabase("openDatabase applies every migration once, and reopening is a no-op", async (store) => {
  const again = await store.openAnother();
  const third = await store.openAnother();
  assert.equal(again.dialect, store.dialect);
  const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(third.db);
  assert.deepEqual(
    applied.rows.map((r) => r.name),
    MIGRATION_NAMES,
  );
  // The table the migrations made is usable from every connection.
  await again.db.insertInto("request_log").values(sampleRow("a")).execute();
  const rows = await store.db.selectFrom("request_log").select("id").execute();
  assert.deepEqual(rows, [{ id: "a" }]);
});

forEachDatabase("stores opened at the same moment on a fresh database both migrate", async (store) => {
  // Gateway replicas start together: the migration lock must make the second one wait, not fail.
  const fresh: OpenDatabaseOptions =
    store.dialect === "sqlite"
      ? { dataDir: join(store.options.dataDir, "fresh") }
      : { ...store.options, schema: `${store.options.schema}_fresh` };
  try {
    const [a, b] = await Promise.all([openDatabase(fresh), openDatabase(fresh)]);
    try {
      const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(a.db);
      assert.deepEqual(applied.rows.map((r) => r.name), MIGRATION_NAMES);
      await b.db.insertInto("request_log").values(sampleRow("x")).execute();
      assert.equal((await a.db.selectFrom("request_log").selectAll().execute()).length, 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  } finally {
    if (fresh.schema) await sql`drop schema if exists ${sql.id(fresh.schema)} cascade`.execute(store.db);
  }
});

forEachDatabase("integers come back as JS numbers, including bigint columns and aggregates", async (store) => {
  const big = 2 ** 40 + 7; // beyond int4, well inside Number.MAX_SAFE_INTEGER
  await store.db.insertInto("request_log").values({ ...sampleRow("a"), created_at: big, total_ms: big }).execute();
  await store.db.insertInto("request_log").values({ ...sampleRow("b"), created_at: big, total_ms: big }).execute();
  const row = await store.db
    .selectFrom("request_log")
    .select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.sum<number>("total_ms").as("sum"), eb.fn.max("created_at").as("max")])
    .executeTakeFirstOrThrow();
  assert.deepEqual(row, { n: 2, sum: 2 * big, max: big });
});

test("openDatabase on SQLite: file in dataDir, WAL, foreign keys, NORMAL sync, busy timeout", async (t) => {
  const store = await openTestStore(t, "sqlite");
  assert.ok(store);
  assert.equal(store.dialect, "sqlite");
  const pragma = async (name: string) => Object.values((await sql.raw(`pragma ${name}`).execute(store.db)).rows[0] as object)[0];
  assert.equal(await pragma("journal_mode"), "wal");
  assert.equal(await pragma("foreign_keys"), 1);
  assert.equal(await pragma("synchronous"), 1); // NORMAL
  assert.equal(await pragma("busy_timeout"), 5000);
  const file = (await sql<{ file: string }>`select file from pragma_database_list where name = 'main'`.execute(store.db)).rows[0]?.file;
  assert.equal(file, join(store.options.dataDir, SQLITE_FILE_NAME));
});

test("SQLite data survives close and reopen", async (t) => {
  const store = await openTestStore(t, "sqlite");
  assert.ok(store);
  await store.db.insertInto("request_log").values(sampleRow("kept")).execute();
  await store.close();
  const reopened = await store.openAnother();
  assert.deepEqual(await reopened.db.selectFrom("request_log").select("id").execute(), [{ id: "kept" }]);
});

test("SQLite: two processes migrating and writing one new file at once lose no rows", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-test-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  // Separate processes contend for the file lock for real: released together, one migrates while
  // the other waits (busy_timeout), then their inserts interleave.
  const writer = fileURLToPath(new URL("./testdata/writeRequestLogRows.ts", import.meta.url));
  const children = ["p1-", "p2-"].map((prefix) =>
    spawn(process.execPath, ["--import", "tsx", writer, dataDir, prefix, "150"], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      stdio: ["pipe", "pipe", "inherit"],
    }),
  );
  const exits = children.map((c) => once(c, "exit"));
  await Promise.all(children.map((c) => once(c.stdout, "data")));
  for (const c of children) c.stdin.write("go\n");
  assert.deepEqual((await Promise.all(exits)).map(([code]) => code), [0, 0]);
  const store = await openDatabase({ dataDir });
  try {
    const rows = await store.db
      .selectFrom("request_log")
      .select((eb) => [sql<string>`substr(model, 1, 3)`.as("p"), eb.fn.countAll<number>().as("n")])
      .groupBy("p")
      .orderBy("p")
      .execute();
    assert.deepEqual(rows, [
      { p: "p1-", n: 150 },
      { p: "p2-", n: 150 },
    ]);
    const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(store.db);
    assert.deepEqual(applied.rows.map((r) => r.name), MIGRATION_NAMES);
  } finally {
    await store.close();
  }
});

test("a migration that fails part-way leaves nothing behind on SQLite", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-test-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  // A table squatting on an index name makes 0001 fail after it has created request_log.
  const raw = new SqliteDatabase(join(dataDir, SQLITE_FILE_NAME));
  raw.exec("create table request_log_user_idx (x integer)");
  raw.close();
  await assert.rejects(openDatabase({ dataDir }), /database migration 0001_request_log failed .*request_log_user_idx/);
  const after = new SqliteDatabase(join(dataDir, SQLITE_FILE_NAME));
  try {
    const tables = after.prepare("select name from sqlite_master where type = 'table' order by name").pluck().all();
    assert.deepEqual(tables, ["request_log_user_idx"]);
  } finally {
    after.close();
  }
});

test("a migration that fails part-way leaves nothing behind on PostgreSQL", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const schema = `test_${randomBytes(8).toString("hex")}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.after(async () => {
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  });
  await client.query(`create schema ${schema}; create table ${schema}.request_log_user_idx (x integer)`);
  await assert.rejects(openDatabase({ url, schema, dataDir: tmpdir() }), /database migration 0001_request_log failed .*request_log_user_idx/);
  const { rows } = await client.query(
    "select table_name from information_schema.tables where table_schema = $1 and table_name like 'request_log%' order by 1",
    [schema],
  );
  assert.deepEqual(rows.map((r) => r.table_name), ["request_log_user_idx"]);
  const applied = await client.query(`select count(*)::int as n from ${schema}.kysely_migration`);
  assert.equal(applied.rows[0].n, 0);
});

test("PostgreSQL: migrating a schema is not disturbed by other schemas being created and dropped meanwhile", async (t) => {
  // Test files migrate their own schemas while others drop theirs. Kysely's stock introspector read
  // every schema's columns and failed mid-query when one vanished (`column "model" of relation
  // "audit_publications" does not exist`); the migrator must look at its own schema only.
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const churn = new pg.Client({ connectionString: url });
  await churn.connect();
  const mine: string[] = [];
  let stop = false;
  let churned = 0;
  const churning = (async () => {
    while (!stop) {
      const other = `test_churn_${randomBytes(6).toString("hex")}`;
      await churn.query(
        `create schema ${other}; create table ${other}.a (id serial primary key, model text, n int); create table ${other}.b (id bigserial, x text)`,
      );
      await churn.query(`drop schema ${other} cascade`);
      churned++;
    }
  })();
  t.after(async () => {
    stop = true;
    await churning.catch(() => {});
    for (const s of mine) await churn.query(`drop schema if exists ${s} cascade`);
    await churn.end();
  });
  for (let i = 0; i < 6; i++) {
    const schema = `test_${randomBytes(8).toString("hex")}`;
    mine.push(schema);
    const store = await openDatabase({ url, schema, dataDir: tmpdir() });
    await store.close();
  }
  stop = true;
  await churning;
  assert.ok(churned > 0, "other schemas were created and dropped while migrating");
});

test("openDatabase on PostgreSQL keeps its tables inside the requested schema", async (t) => {
  const store = await openTestStore(t, "postgres");
  if (!store) return;
  assert.equal(store.dialect, "postgres");
  const tables = await sql<{ schema: string }>`
    select table_schema as schema from information_schema.tables where table_name = 'request_log' and table_schema = ${store.options.schema!}
  `.execute(store.db);
  assert.equal(tables.rows.length, 1);
  const migrationTable = await sql<{ schema: string }>`
    select table_schema as schema from information_schema.tables where table_name = 'kysely_migration' and table_schema = ${store.options.schema!}
  `.execute(store.db);
  assert.equal(migrationTable.rows.length, 1);
});

test("PostgreSQL: a bigint too large for a JS number is an error, not a wrong value", async (t) => {
  const store = await openTestStore(t, "postgres");
  if (!store) return;
  await assert.rejects(sql`select 9007199254740993::bigint as n`.execute(store.db), /too large to represent exactly/);
  const ok = await sql<{ n: number }>`select 9007199254740991::bigint as n`.execute(store.db);
  assert.equal(ok.rows[0]?.n, Number.MAX_SAFE_INTEGER);
});

test("PostgreSQL: the int8 parser is scoped to our pool, not installed process-wide", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const store = await openTestStore(t, "postgres");
  assert.ok(store);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query("select 5::bigint as n");
    assert.equal(rows[0].n, "5");
  } finally {
    await client.end();
  }
});

test("openDatabase explains a bad URL, a bad schema and an unreachable server", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-test-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  await assert.rejects(openDatabase({ dataDir, url: "mysql://u:secret@localhost/db" }), (err: Error) => {
    assert.match(err.message, /unsupported database URL mysql:\/\/u:\*\*\*@localhost\/db/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
  await assert.rejects(openDatabase({ dataDir, url: "postgres://localhost/test", schema: "x; drop table y" }), /invalid PostgreSQL schema name/);
  await assert.rejects(openDatabase({ dataDir, schema: "s" }), /applies to PostgreSQL only/);
  // Port 1 on loopback: refused at once, nothing listens there.
  await assert.rejects(openDatabase({ dataDir, url: "postgresql://sputnik:secret@127.0.0.1:1/test" }), (err: Error) => {
    assert.match(err.message, /cannot use PostgreSQL at postgresql:\/\/sputnik:\*\*\*@127\.0\.0\.1:1\/test: .*ECONNREFUSED/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});

forEachDatabase("ping: the database answers, at this build's latest migration", async (store) => {
  const health = await store.ping();
  assert.equal(health.ok, true, health.error);
  assert.equal(health.dialect, store.dialect);
  assert.equal(health.migration, MIGRATION_NAMES.at(-1));
  assert.ok(typeof health.latencyMs === "number" && health.latencyMs >= 0);
});

forEachDatabase("ping: a database re-created empty is reported, not taken for healthy", async (store) => {
  if (store.dialect === "postgres") {
    // As if the database had been dropped and created again: our schema and every table are gone.
    await sql`drop schema ${sql.id(store.options.schema!)} cascade`.execute(store.db);
  } else {
    await sql`drop table kysely_migration`.execute(store.db);
  }
  const health = await store.ping();
  assert.equal(health.ok, false);
  assert.equal(health.migration, null);
  assert.match(health.error ?? "", /holds no Sputnik tables .*re-created or restored empty/);
});

test("PostgreSQL: connections carry the configured statement_timeout and application_name", async (t) => {
  const base = await openTestStore(t, "postgres");
  if (!base) return;
  const setting = async (db: typeof base.db, name: string) => (await sql.raw<{ v: string }>(`select current_setting('${name}') as v`).execute(db)).rows[0]?.v;
  assert.equal(await setting(base.db, "statement_timeout"), "30s", "default");
  assert.equal(await setting(base.db, "application_name"), "sputnik");
  const tuned = await openDatabase({ ...base.options, statementTimeoutMs: 1234, applicationName: "sputnik-tuned" });
  try {
    assert.equal(await setting(tuned.db, "statement_timeout"), "1234ms");
    assert.equal(await setting(tuned.db, "application_name"), "sputnik-tuned");
  } finally {
    await tuned.close();
  }
});

test("PostgreSQL: a statement over statement_timeout and a query over query_timeout are retryable unavailable errors", async (t) => {
  const base = await openTestStore(t, "postgres");
  if (!base) return;
  const slowServer = await openDatabase({ ...base.options, statementTimeoutMs: 200 });
  const hungServer = await openDatabase({ ...base.options, statementTimeoutMs: 0, queryTimeoutMs: 300, poolSize: 1 });
  t.after(() => Promise.all([slowServer.close(), hungServer.close()]));
  await assert.rejects(sql`select pg_sleep(3)`.execute(slowServer.db), (err: Error) => {
    assert.ok(err instanceof DatabaseUnavailableError);
    assert.equal(err.code, "database_unavailable");
    assert.match(String((err.cause as Error).message), /statement timeout/);
    return true;
  });
  const started = Date.now();
  await assert.rejects(sql`select pg_sleep(3)`.execute(hungServer.db), (err: Error) => err instanceof DatabaseUnavailableError && /Query read timeout/.test(String((err.cause as Error).message)));
  assert.ok(Date.now() - started < 2_000, "the client stopped waiting");
  // With one connection in the pool, the next query only runs at once if the timed-out connection
  // (its pg_sleep still running) was thrown away rather than handed out again.
  const next = Date.now();
  assert.deepEqual((await sql<{ one: number }>`select 1 as one`.execute(hungServer.db)).rows, [{ one: 1 }]);
  assert.ok(Date.now() - next < 1_500, `the next query waited ${Date.now() - next} ms`);
});

test("PostgreSQL: connections killed by the server are errors of the query, never of the process; the pool recovers", async (t) => {
  const base = await openTestStore(t, "postgres");
  if (!base) return;
  const applicationName = `sputnik-kill-${randomBytes(4).toString("hex")}`;
  const store = await openDatabase({ ...base.options, applicationName, poolSize: 3 });
  t.after(() => store.close());
  const admin = new pg.Client({ connectionString: base.options.url });
  await admin.connect();
  t.after(() => admin.end());
  const kill = () => admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1", [applicationName]);

  // One connection busy in a query, others idle in the pool: both kinds die.
  await Promise.all([1, 2, 3].map(() => sql`select 1`.execute(store.db)));
  const busy = sql`select pg_sleep(5)`.execute(store.db);
  // It may reject while `kill()` is still awaited: handled now, asserted below.
  busy.catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  await kill();
  await assert.rejects(busy, (err: Error) => err instanceof DatabaseUnavailableError && (err as DatabaseUnavailableError).retryAfterS! >= 1);
  // An idle connection learns of its end only when its socket says so; on a busy machine one may
  // still be handed out once: that query fails as unavailable (never the process), and the pool
  // replaces the connection, so a retry within a few attempts succeeds.
  let rows: Array<{ one: number }> | undefined;
  for (let attempt = 1; !rows; attempt++) {
    try {
      rows = (await sql<{ one: number }>`select 1 as one`.execute(store.db)).rows;
    } catch (error) {
      assert.ok(error instanceof DatabaseUnavailableError, `attempt ${attempt}: ${String(error)}`);
      assert.ok(attempt < 4, "the pool recovers within three attempts (one per killed connection)");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.deepEqual(rows, [{ one: 1 }]);
  assert.equal((await store.ping()).ok, true);
});

test("ping: a PostgreSQL that stopped answering fails the check within its time limit", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  // A proxy to the real server that can go silent: connections stay open, bytes stop flowing.
  let silent = false;
  const sockets = new Set<Socket>();
  const proxy = createServer((inbound) => {
    const target = new URL(url);
    const outbound = connect(Number(target.port || 5432), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => (inbound.destroy(), outbound.destroy()));
    }
    inbound.on("data", (d) => void (silent || outbound.write(d)));
    outbound.on("data", (d) => void (silent || inbound.write(d)));
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    proxy.close();
  });
  const proxied = new URL(url);
  proxied.port = String((proxy.address() as AddressInfo).port);
  const store = await openDatabase({ url: proxied.toString(), dataDir: tmpdir(), healthTimeoutMs: 300, connectTimeoutMs: 500, queryTimeoutMs: 1_000 });
  t.after(() => store.close());
  assert.equal((await store.ping()).ok, true);
  silent = true;
  const started = Date.now();
  const health = await store.ping();
  assert.equal(health.ok, false);
  assert.match(health.error ?? "", /PostgreSQL at postgres:\/\/.* is unreachable: no answer within 300 ms/);
  assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
  await assert.rejects(sql`select 1`.execute(store.db), DatabaseUnavailableError);
  silent = false;
  // New connections work again at once; the hung ones were thrown away after their timeout.
  for (let i = 0; ; i++) {
    if ((await store.ping()).ok) break;
    assert.ok(i < 20, "ping green again after the server answers");
    await new Promise((r) => setTimeout(r, 100));
  }
});

test("SQLite: busy_timeout is configurable", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-test-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const store = await openDatabase({ dataDir, busyTimeoutMs: 1234 });
  try {
    assert.equal((await sql.raw<{ timeout: number }>("pragma busy_timeout").execute(store.db)).rows[0]?.timeout, 1234);
  } finally {
    await store.close();
  }
});

test("redactUrl hides only the password", () => {
  assert.equal(redactUrl("postgres://me:pw@db.example:5432/app?sslmode=require"), "postgres://me:***@db.example:5432/app?sslmode=require");
  assert.equal(redactUrl("postgres://me@db/app"), "postgres://me@db/app");
  assert.equal(redactUrl("not a url://me:pw@x"), "not a url://me:***@x");
});

function sampleRow(id: string) {
  return {
    id,
    created_at: 1_700_000_000_000,
    model: "m",
    engine: "local",
    status: 200,
    error_code: null,
    stream: 0 as const,
    prompt_tokens: 1,
    completion_tokens: 2,
    reasoning_tokens: 0,
    cache_hit_tokens: 0,
    cache_miss_tokens: 1,
    queue_ms: 0,
    ttft_ms: null,
    total_ms: 3,
    user_id: null,
    api_key_id: null,
    client_ip: null,
  };
}

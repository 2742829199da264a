/**
 * Crash consistency of billing, with a real server process killed by SIGKILL mid-stream.
 *
 * The rule (src/billing/meter.ts): a request whose server dies before it settles is charged
 * NOTHING. Its ledger row stays `open`, holding its reservation, until the restarted server (at
 * once on SQLite, which no other server shares) or any live replica (once the dead one's lease has
 * run out, on PostgreSQL) closes it as `interrupted` and gives the reservation back — so after the
 * restart the balance is exactly what it was before the request, and every ledger row is closed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import pg from "pg";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { PasswordHasher } from "../src/auth/passwords.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit, getBalance } from "../src/billing/balances.ts";
import { savePlan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { ensureModel, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { openDatabase, type OpenDatabaseOptions, type Store } from "../src/store/database.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startServeProcess, writeServeConfig } from "./support/serveProcess.ts";
import { postgresUrlOrSkip } from "./support/services.ts";

const CREDIT = 5_000_000;
const LEASE_MS = 1_000;
const STALE_STREAM_MS = 3_000;

interface CrashSetup {
  storeOptions: OpenDatabaseOptions;
  configFile: string;
  userId: string;
  key: string;
}

/**
 * A data dir (and on PostgreSQL a database of its own) with an account on a billed plan, with
 * credit, an API key and a password, and a server config: one model, one sequence, short leases.
 * Undefined when PostgreSQL is wanted and not running (the test has been skipped).
 */
async function crashSetup(t: TestContext, dialect: "sqlite" | "postgres"): Promise<CrashSetup | undefined> {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-crash-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const databaseUrl = dialect === "postgres" ? await freshPostgresDatabase(t) : undefined;
  if (dialect === "postgres" && !databaseUrl) return undefined;
  const storeOptions: OpenDatabaseOptions = { dataDir, ...(databaseUrl ? { url: databaseUrl } : {}) };

  // Written before the server starts.
  const seed = await openDatabase(storeOptions);
  let key: string;
  let userId: string;
  try {
    await savePlan(seed.db, { id: "pro", name: "Pro", billed: true, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
    await savePriceSet(seed.db, { model: "*", base: { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 }, windows: [] }, null);
    const passwordHash = await new PasswordHasher(TEST_PASSWORD_HASHING).hash(TEST_PASSWORD);
    const user = await insertUser(seed.db, { username: "crash", email: null, passwordHash, role: "user", status: "active", planId: "pro" });
    userId = user.id;
    key = (await createApiKey(seed.db, { userId, name: "crash", models: null, expiresAt: null })).key;
    await addCredit(seed.db, { userId, kind: "topped_up", amountMicros: CREDIT, source: "admin" });
  } finally {
    await seed.close();
  }

  const configFile = join(dataDir, "config.json");
  await writeServeConfig(configFile, {
    dataDir,
    models: [await ensureModel("scripted-long")],
    parallel: 1,
    contextSize: 2048,
    ...(databaseUrl ? { databaseUrl } : {}),
    billing: { reservationLeaseMs: LEASE_MS },
    // On PostgreSQL a leftover stream is only known dead once stale (other replicas may stream).
    conversations: { staleStreamMs: STALE_STREAM_MS },
    auth: { passwordHashing: TEST_PASSWORD_HASHING },
  });
  return { storeOptions, configFile, userId, key };
}

for (const dialect of ["sqlite", "postgres"] as const) {
  test(`SIGKILL mid-stream leaves ledger and balance consistent after restart: the request is charged nothing [${dialect}]`, async (t) => {
    const setup = await crashSetup(t, dialect);
    if (!setup) return;
    const { storeOptions, configFile, userId, key } = setup;

    const first = await startServer(configFile);
    t.after(() => first.kill("SIGKILL"));
    const abort = new AbortController();
    const response = await fetch(`${first.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "scripted-long", stream: true, messages: [{ role: "user", content: "Think for a long time" }] }),
      signal: abort.signal,
    });
    assert.equal(response.status, 200);
    await readUntil(response, (text) => (text.match(/"reasoning_content":"[^"]/g) ?? []).length >= 3);
    first.kill("SIGKILL");
    await first.exited;
    abort.abort();

    // The dead server left its reservation open: the request was in flight.
    let store = await openDatabase(storeOptions);
    try {
      await assertReservationOpen(store, userId);
    } finally {
      await store.close();
    }

    const second = await startServer(configFile);
    t.after(() => second.kill("SIGKILL"));
    store = await openDatabase(storeOptions);
    try {
      await assertReleasedUncharged(store, userId);

      // The restarted server bills the next request normally: ledger and balance still add up.
      const next = await fetch(`${second.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "scripted-long", max_tokens: 16, messages: [{ role: "user", content: "Short, please" }] }),
      });
      assert.equal(next.status, 200);
      await next.json();
      const rows = await eventually(
        () => store.db.selectFrom("usage_ledger").selectAll().where("status", "=", "completed").execute(),
        (r) => r.length === 1,
        "the next request to settle",
      );
      const after = await getBalance(store.db, userId);
      assert.ok(rows[0]!.charged_micros > 0);
      assert.equal(CREDIT - after.toppedUpMicros, rows[0]!.charged_micros);
      assert.equal(after.reservedMicros, 0);
    } finally {
      await store.close();
    }
    second.kill("SIGTERM");
    await second.exited;
  });
}

for (const dialect of ["sqlite", "postgres"] as const) {
  test(`SIGKILL during a web chat reply: after restart the answer is interrupted with its text so far, the question kept, nothing charged [${dialect}]`, async (t) => {
    const setup = await crashSetup(t, dialect);
    if (!setup) return;
    const { storeOptions, configFile, userId } = setup;

    const first = await startServer(configFile);
    t.after(() => first.kill("SIGKILL"));
    const browser = new AppClient(first.url);
    assert.equal((await browser.post("/api/auth/login", { login: "crash", password: TEST_PASSWORD })).status, 200);
    const conversation = (await browser.post("/api/conversations", {})).body;
    const abort = new AbortController();
    const response = await browser.stream(`/api/conversations/${conversation.id}/messages`, { content: "Think for a long time", parent_id: null, model: "scripted-long" }, abort.signal);
    assert.equal(response.status, 200);
    await readUntil(response, (text) => (text.match(/"type":"reasoning"/g) ?? []).length >= 3);
    first.kill("SIGKILL");
    await first.exited;
    abort.abort();

    // What the dead server left: the question stored, the answer still "streaming", its charge reserved.
    let store = await openDatabase(storeOptions);
    try {
      const messages = await store.db.selectFrom("messages").selectAll().where("conversation_id", "=", conversation.id).execute();
      assert.deepEqual(messages.map((m) => [m.role, m.status]).sort(), [["assistant", "streaming"], ["user", "complete"]]);
      await assertReservationOpen(store, userId);
    } finally {
      await store.close();
    }

    const second = await startServer(configFile);
    t.after(() => second.kill("SIGKILL"));
    store = await openDatabase(storeOptions);
    try {
      // As the user sees it after a reload (signing in again on the new process).
      const again = new AppClient(second.url);
      assert.equal((await again.post("/api/auth/login", { login: "crash", password: TEST_PASSWORD })).status, 200);
      type Shown = Array<{ role: string; status: string; content: string; reasoning: string }>;
      const shown = await eventually(
        async () => (await again.get(`/api/conversations/${conversation.id}`)).body.messages as Shown,
        (messages) => messages.some((m) => m.role === "assistant" && m.status !== "streaming"),
        "the answer left streaming to be marked",
      );
      const question = shown.find((m) => m.role === "user")!;
      const answer = shown.find((m) => m.role === "assistant")!;
      assert.deepEqual([question.content, question.status], ["Think for a long time", "complete"]);
      assert.equal(answer.status, "interrupted");
      // The text flushed before the kill (it may be none yet) is a true prefix of the reasoning.
      assert.ok(MODEL_SCRIPTS["scripted-long"]!.reasoning.startsWith(answer.reasoning), `kept reasoning: ${JSON.stringify(answer.reasoning)}`);
      assert.equal(answer.content, "");

      await assertReleasedUncharged(store, userId);
    } finally {
      await store.close();
    }
    second.kill("SIGTERM");
    await second.exited;
  });
}

for (const dialect of ["sqlite", "postgres"] as const) {
  test(`SIGKILL the moment the client sees the end ([DONE], the app's done): that answer is charged and logged [${dialect}]`, async (t) => {
    const setup = await crashSetup(t, dialect);
    if (!setup) return;
    const { storeOptions, configFile, userId, key } = setup;

    // The API: killed as soon as `[DONE]` is read.
    const first = await startServer(configFile);
    t.after(() => first.kill("SIGKILL"));
    const response = await fetch(`${first.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "scripted-long", stream: true, max_tokens: 24, messages: [{ role: "user", content: "Be quick" }] }),
    });
    assert.equal(response.status, 200);
    await readUntil(response, (text) => text.includes("data: [DONE]"));
    first.kill("SIGKILL");
    await first.exited;

    // The web app: killed as soon as the `done` event is read.
    const second = await startServer(configFile);
    t.after(() => second.kill("SIGKILL"));
    const browser = new AppClient(second.url);
    assert.equal((await browser.post("/api/auth/login", { login: "crash", password: TEST_PASSWORD })).status, 200);
    const conversation = (await browser.post("/api/conversations", {})).body;
    const reply = await browser.stream(`/api/conversations/${conversation.id}/messages`, { content: "Be quick", parent_id: null, model: "scripted-long" });
    assert.equal(reply.status, 200);
    await readUntil(reply, (text) => text.includes('"type":"done"'));
    second.kill("SIGKILL");
    await second.exited;

    const store = await openDatabase(storeOptions);
    try {
      const ledger = await store.db.selectFrom("usage_ledger").selectAll().orderBy("started_at").execute();
      assert.deepEqual(
        ledger.map((r) => r.status),
        ["completed", "completed"],
        "both answers the clients saw complete are settled",
      );
      assert.ok(ledger.every((r) => r.charged_micros > 0));
      const logged = await store.db.selectFrom("request_log").selectAll().execute();
      assert.deepEqual(logged.map((r) => r.id).sort(), ledger.map((r) => r.id).sort(), "each has its request log row (same id)");
      const answer = await store.db.selectFrom("messages").selectAll().where("conversation_id", "=", conversation.id).where("role", "=", "assistant").executeTakeFirstOrThrow();
      assert.equal(answer.status, "complete");
      const balance = await getBalance(store.db, userId);
      assert.equal(balance.reservedMicros, 0);
      assert.equal(CREDIT - balance.toppedUpMicros, ledger[0]!.charged_micros + ledger[1]!.charged_micros);
    } finally {
      await store.close();
    }
  });
}

/** What a server killed mid-request leaves: its one ledger row still open, holding the reserved credit. */
async function assertReservationOpen(store: Store, userId: string): Promise<void> {
  const [row] = await store.db.selectFrom("usage_ledger").selectAll().execute();
  assert.equal(row?.status, "open");
  assert.ok(row.reserved_micros > 0);
  assert.equal((await getBalance(store.db, userId)).reservedMicros, row.reserved_micros);
}

/** Waits for the restarted server to close that row: interrupted, nothing charged, the balance whole again. */
async function assertReleasedUncharged(store: Store, userId: string): Promise<void> {
  const released = await eventually(
    () => store.db.selectFrom("usage_ledger").selectAll().execute(),
    (rows) => rows.length === 1 && rows[0]!.status !== "open",
    "the interrupted request to be released",
  );
  const row = released[0]!;
  assert.equal(row.status, "interrupted");
  assert.equal(row.charged_micros, 0);
  assert.equal(row.cost_micros, 0);
  assert.ok(row.ended_at !== null);
  assert.deepEqual(await getBalance(store.db, userId), { userId, grantedMicros: 0, toppedUpMicros: CREDIT, reservedMicros: 0 });
}

/** `sputnik serve` in its own process (test/support/serveProcess.ts). */
const startServer = startServeProcess;

async function readUntil(response: Response, done: (text: string) => boolean): Promise<void> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!done(text)) {
    const { value, done: ended } = await reader.read();
    if (ended) assert.fail(`the stream ended before the server was killed:\n${text}`);
    text += decoder.decode(value, { stream: true });
  }
}

async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A database of its own (the server process opens it by URL), dropped when the test ends. */
async function freshPostgresDatabase(t: TestContext): Promise<string | undefined> {
  const url = await postgresUrlOrSkip(t);
  if (!url) return undefined;
  const name = `sputnik_crash_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  t.after(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`drop database if exists ${name} with (force)`);
    } finally {
      await client.end();
    }
  });
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}


/**
 * The database failing under a running service, on loopback against the test PostgreSQL:
 * connections killed mid-request, a server that accepts and never answers, and an outage the test
 * starts and ends itself (a TCP proxy it cuts). The rule: the process never dies, every request ends
 * (an answer, or an error in OpenAI's shape: 503 + Retry-After while the database is away), /health
 * says what is wrong, and everything works again once the database is back, without a restart.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit, getBalance } from "../src/billing/balances.ts";
import { savePlan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { openDatabase } from "../src/store/database.ts";
import { startServeProcess, type ServeProcess } from "./support/serveProcess.ts";
import { postgresUrlOrSkip } from "./support/services.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

test("PostgreSQL connections killed while requests run: the process survives, every request ends, the next ones work", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const setup = await serviceSetup(t, url, url);
  const server = await startServer(t, setup.configFile);
  const api = apiClient(server.url, setup.key);
  assert.equal((await api.complete()).status, 200, "works before");

  // Waves of requests (streamed and not) while every connection of this server is killed, again and again.
  const killed: number[] = [];
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      killed.push(await terminateBackends(url, setup.applicationName));
      await sleep(40);
    }
  })();
  const outcomes: Array<{ status: number; ok: boolean; why: string }> = [];
  for (let wave = 0; wave < 4; wave++) {
    outcomes.push(...(await Promise.all(Array.from({ length: 6 }, (_, i) => api.outcome(i % 2 === 0)))));
  }
  stop = true;
  await killer;

  assert.ok(killed.reduce((a, b) => a + b, 0) > 0, "connections were killed while requests ran");
  assert.ok(server.alive(), `the server process is still running:\n${server.output()}`);
  for (const o of outcomes) assert.ok(o.ok, `every request ended with an answer or a retryable 503 (database_unavailable or settlement_failed) with Retry-After: ${o.status} ${o.why}`);

  // The pool replaced its dead connections: requests and /health work again, no restart.
  await eventually(async () => (await api.complete()).status === 200, "a request to succeed after the kills");
  await eventually(async () => (await fetch(`${server.url}/health`)).status === 200, "/health to be green again");
  const health = (await (await fetch(`${server.url}/health`)).json()) as { database: { ok: boolean } };
  assert.equal(health.database.ok, true);
  assert.ok(server.alive());
  assert.doesNotMatch(server.output(), /Unhandled 'error' event/);
});

test("a database that accepts connections and never answers: the start fails fast, naming the database", async (t) => {
  const silent = await silentServer(t);
  const hangingUrl = `postgres://sputnik:secret@127.0.0.1:${silent.port}/sputnik`;

  const started = Date.now();
  await assert.rejects(
    openDatabase({ url: hangingUrl, dataDir: tmpdir(), connectTimeoutMs: 500 }),
    (err: Error) => {
      assert.match(err.message, new RegExp(`PostgreSQL at postgres://sputnik:\\*\\*\\*@127\\.0\\.0\\.1:${silent.port}/sputnik`));
      assert.match(err.message, /no answer within 500 ms \(database\.connectTimeoutMs\)/);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 3_000, `failed after ${Date.now() - started} ms`);
  assert.ok(silent.accepted() > 0, "the server was really reached");

  // The same as an operator sees it: `sputnik serve` exits with that message instead of hanging.
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-dbfail-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const configFile = join(dataDir, "config.json");
  await writeFile(configFile, JSON.stringify({ ...baseConfig(dataDir), models: ["demo"], databaseUrl: hangingUrl, database: { connectTimeoutMs: 1_000 } }));
  const child = spawn(process.execPath, [join(root, "bin/sputnik.js"), "-c", configFile, "serve"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  assert.notEqual(code, 0, output);
  assert.notEqual(code, null, `sputnik serve hung and was killed:\n${output}`);
  assert.match(output, new RegExp(`127\\.0\\.0\\.1:${silent.port}/sputnik`));
  assert.match(output, /no answer within 1000 ms/);
});

test("database down under a running service: 503 + Retry-After in OpenAI's shape, /health red, all green after it is back", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const proxy = await tcpProxy(t, new URL(url));
  const proxied = new URL(url);
  proxied.port = String(proxy.port);
  const setup = await serviceSetup(t, url, proxied.toString());
  const server = await startServer(t, setup.configFile);
  const api = apiClient(server.url, setup.key);
  assert.equal((await api.complete()).status, 200, "works before");
  assert.equal((await fetch(`${server.url}/health`)).status, 200);

  proxy.cut();
  for (const stream of [false, true]) {
    const response = await api.complete(stream);
    assert.equal(response.status, 503, await response.clone().text());
    assert.ok(Number(response.headers.get("retry-after")) >= 1, "Retry-After is set");
    const body = (await response.json()) as { error: { message: string; type: string; param: unknown; code: string } };
    assert.equal(body.error.code, "database_unavailable");
    assert.equal(body.error.type, "service_unavailable");
    assert.ok("param" in body.error && typeof body.error.message === "string");
    assert.doesNotMatch(body.error.message, /127\.0\.0\.1|ECONNREFUSED/, "no connection details for clients");
  }
  const models = await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${setup.key}` } });
  assert.ok([200, 503].includes(models.status), `models: ${models.status}`);

  const red = await fetch(`${server.url}/health`);
  assert.equal(red.status, 503);
  const redBody = (await red.json()) as { status: string; failing: string[]; database: { ok: boolean; error: string } };
  assert.equal(redBody.status, "degraded");
  assert.deepEqual(redBody.failing, ["database"]);
  assert.equal(redBody.database.ok, false);
  assert.match(redBody.database.error, /PostgreSQL at postgres:\/\/.*unreachable/);
  assert.equal((await fetch(`${server.url}/health/live`)).status, 200, "alive all along");
  assert.ok(server.alive());

  proxy.restore();
  await eventually(async () => (await fetch(`${server.url}/health`)).status === 200, "/health to be green after the database is back");
  assert.equal((await api.complete()).status, 200);
  assert.equal((await api.complete(true)).status, 200);
  assert.ok(server.alive());
});

test("database down while a billed answer settles: charged nothing, the lease is not renewed for ever, the reservation is released", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const proxy = await tcpProxy(t, new URL(url));
  const proxied = new URL(url);
  proxied.port = String(proxy.port);
  const setup = await serviceSetup(t, url, proxied.toString(), { billed: true });
  const server = await startServer(t, setup.configFile);
  // The test reads the books straight from the database, around the proxy.
  const books = await openDatabase({ url, schema: setup.schema, dataDir: tmpdir() });
  t.after(() => books.close());

  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${setup.key}` },
    body: JSON.stringify({ model: "scripted-long", stream: true, messages: [{ role: "user", content: "Think for a long time" }] }),
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while ((text.match(/"reasoning_content":"[^"]/g) ?? []).length < 3) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended before the database went away:\n${text}`);
    text += decoder.decode(value, { stream: true });
  }
  const [open] = await books.db.selectFrom("usage_ledger").selectAll().execute();
  assert.equal(open?.status, "open", "the request holds a reservation");
  assert.ok(open.reserved_micros > 0);

  // The database goes away while the answer is still being written: its settlement cannot commit.
  proxy.cut();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  assert.match(text, /data: \[DONE\]\s*$/, "the stream still ends properly");
  assert.equal((await books.db.selectFrom("usage_ledger").select("status").executeTakeFirst())?.status, "open", "nothing was settled");

  // Back again, before the lease it had when the database went away runs out. Had the charge stayed
  // among the ones this process renews, the lease would now be extended (for ever, holding the
  // credit); abandoned, it runs out and the sweep releases the reservation, charging nothing.
  proxy.restore();
  const leaseAtOutage = open.lease_until!;
  assert.ok(Date.now() < leaseAtOutage, "the outage must end within the lease for this test to tell renewed from abandoned");
  const deadline = Date.now() + 2 * LEASE_MS + 15_000;
  let row = open;
  while (row.status === "open") {
    assert.ok(row.lease_until! <= leaseAtOutage, "the lease of a charge whose settlement failed was renewed");
    assert.ok(Date.now() < deadline, `still open, lease until ${row.lease_until} (now ${Date.now()})`);
    await sleep(200);
    row = (await books.db.selectFrom("usage_ledger").selectAll().where("id", "=", open.id).executeTakeFirst())!;
  }
  assert.equal(row.status, "interrupted");
  assert.equal(row.charged_micros, 0);
  assert.equal(row.cost_micros, 0);
  assert.deepEqual(await getBalance(books.db, setup.userId), { userId: setup.userId, grantedMicros: 0, toppedUpMicros: CREDIT, reservedMicros: 0 });
  assert.ok(server.alive());
  await eventually(async () => (await fetch(`${server.url}/health`)).status === 200, "/health to be green again");
});

const CREDIT = 5_000_000;
/** Long enough that the outage (the rest of the answer, then the settlement's retries) ends within it. */
const LEASE_MS = 10_000;

interface Setup {
  configFile: string;
  key: string;
  userId: string;
  schema: string;
  applicationName: string;
}

/**
 * A schema of its own in the test database with one user and an API key, and a config serving the
 * scripted model from it through `serviceUrl` (the database itself, or a proxy in front of it).
 */
async function serviceSetup(t: TestContext, adminUrl: string, serviceUrl: string, options: { billed?: boolean } = {}): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-dbfail-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const suffix = randomBytes(6).toString("hex");
  const schema = `dbfail_${suffix}`;
  const applicationName = `sputnik-test-${suffix}`;
  t.after(async () => {
    await terminateBackends(adminUrl, applicationName);
    await withClient(adminUrl, (c) => c.query(`drop schema if exists "${schema}" cascade`));
  });
  const seed = await openDatabase({ url: adminUrl, schema, dataDir });
  let key: string;
  let userId: string;
  try {
    if (options.billed) {
      await savePlan(seed.db, { id: "pro", name: "Pro", billed: true, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
      await savePriceSet(seed.db, { model: "*", base: { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 }, windows: [] }, null);
    }
    const user = await insertUser(seed.db, { username: "dbfail", email: null, passwordHash: "unused", role: "user", status: "active", planId: options.billed ? "pro" : null });
    userId = user.id;
    key = (await createApiKey(seed.db, { userId, name: "dbfail", models: null, expiresAt: null })).key;
    if (options.billed) await addCredit(seed.db, { userId, kind: "topped_up", amountMicros: CREDIT, source: "admin" });
  } finally {
    await seed.close();
  }
  const configFile = join(dataDir, "config.json");
  await writeFile(
    configFile,
    JSON.stringify({
      ...baseConfig(dataDir),
      models: [await ensureModel("scripted"), await ensureModel("scripted-long")],
      databaseUrl: serviceUrl,
      // Short waits so an outage shows within the test's patience; the defaults are seconds longer.
      database: { schema, applicationName, connectTimeoutMs: 1_000, queryTimeoutMs: 5_000, healthTimeoutMs: 1_000 },
      billing: { reservationLeaseMs: LEASE_MS },
    }),
  );
  return { configFile, key, userId, schema, applicationName };
}

function baseConfig(dataDir: string) {
  return { host: "127.0.0.1", port: 0, dataDir, threads: 1, parallel: 2, contextSize: 2048, pullDefaultModel: false, logLevel: "info" };
}

function apiClient(url: string, key: string) {
  const complete = (stream = false) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "scripted", stream, max_tokens: 24, messages: [{ role: "user", content: "Hello there" }] }),
      signal: AbortSignal.timeout(30_000),
    });
  /** Sends one request and judges how it ended: an answer, or an error in OpenAI's shape (SSE: an error event then [DONE]). */
  const outcome = async (stream: boolean): Promise<{ status: number; ok: boolean; why: string }> => {
    let response: Response;
    try {
      response = await complete(stream);
    } catch (err) {
      return { status: 0, ok: false, why: `no response: ${(err as Error).message}` };
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      return { status: response.status, ok: false, why: `body cut: ${(err as Error).message}` };
    }
    if (response.status !== 200) {
      // The database's fault, so a retryable 503 in OpenAI's shape: refused before any work
      // (database_unavailable), or answered but the books could not be written, so not charged
      // and not delivered (settlement_failed: a connection killed at that moment).
      const error = (JSON.parse(text) as { error?: { message?: unknown; code?: unknown } }).error;
      const retryable =
        response.status === 503 && (error?.code === "database_unavailable" || error?.code === "settlement_failed") && Number(response.headers.get("retry-after")) >= 1;
      return { status: response.status, ok: retryable && typeof error?.message === "string", why: text.slice(0, 300) };
    }
    if (!stream) {
      const body = JSON.parse(text) as { choices?: unknown[] };
      return { status: 200, ok: Array.isArray(body.choices), why: text.slice(0, 300) };
    }
    return { status: 200, ok: text.trimEnd().endsWith("data: [DONE]"), why: text.slice(-300) };
  };
  return { complete, outcome };
}

/** Kills every connection this test's server holds (as a DBA or a failover would); returns how many. */
async function terminateBackends(url: string, applicationName: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      "select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()",
      [applicationName],
    );
    return Number(rows[0]?.n ?? 0);
  });
}

async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/** A `sputnik serve` process killed (SIGKILL, by PID) when the test ends. */
async function startServer(t: TestContext, configFile: string): Promise<ServeProcess> {
  const server = await startServeProcess(configFile);
  t.after(async () => {
    server.kill("SIGKILL");
    await server.exited;
  });
  return server;
}

/** A loopback TCP server that accepts connections and never says a word. */
async function silentServer(t: TestContext): Promise<{ port: number; accepted(): number }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

/**
 * A loopback TCP proxy to the database. `cut()` drops every connection through it and refuses new
 * ones (the database "goes away"); `restore()` accepts again on the same port.
 */
async function tcpProxy(t: TestContext, target: URL): Promise<{ port: number; cut(): void; restore(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  t.after(async () => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise((resolve) => server.close(resolve));
  });
  return {
    port,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
    restore() {
      server.listen(port, "127.0.0.1");
    },
  };
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

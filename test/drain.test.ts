/**
 * Graceful drain of `sputnik serve` in its own process, on SQLite and PostgreSQL.
 *
 * On SIGTERM: /readyz turns 503 at once while /livez stays 200; a new request gets 503 +
 * Retry-After in its API's error shape; requests waiting in the queue are refused the same way;
 * running streams (the /v1 and Anthropic APIs, the web app's replies) get `shutdownTimeoutMs` to
 * finish, and those still running then end with an error event (the web app's answer is stored as
 * interrupted with its text so far); the process exits 0. The books after the exit: one settled
 * ledger row per admitted request with its request log row (same id), what was generated billed
 * (cut answers included), nothing left open, nothing charged twice.
 *
 * The streams that finish during the drain run on `scripted-long` in llama.cpp (short answers,
 * hundreds of tokens a second). The ones that cannot finish run on `slow`, a remote model whose
 * upstream (a server in this process) writes a token every 50 ms and never ends: so the outcome
 * does not depend on the machine's speed, and the cut streams cost no CPU that the others need.
 * Its 4 places (`maxConcurrency`) are taken, so requests for it wait in its queue.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { PasswordHasher } from "../src/auth/passwords.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit, getBalance } from "../src/billing/balances.ts";
import { savePlan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { ensureModel, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { DIALECTS, openTestStore } from "./support/databases.ts";
import { startServeProcess, writeServeConfig, type ServeProcess } from "./support/serveProcess.ts";

const SHUTDOWN_TIMEOUT_MS = 3_000;
/** How much later than the timeout the process may exit (settling the cut answers, closing). */
const EXIT_MARGIN_MS = 10_000;
const CREDIT = 5_000_000;
const SHORT = "scripted-long";
const LONG = "slow";
/** Tokens of the shortest API stream: still running when SIGTERM comes, done well within the timeout. */
const SHORT_TOKENS = 80;
const LONG_TOKENS = 1500;
/** How often the slow upstream writes a token. */
const SLOW_TOKEN_MS = 50;

let upstream: Server;
let upstreamUrl: string;
before(async () => {
  upstream = slowUpstream();
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
});
after(() => {
  upstream.closeAllConnections();
  upstream.close();
});

for (const dialect of DIALECTS) {
  test(`SIGTERM drains: probes flip, new and queued requests get 503, short streams finish, long ones end with an error event, books consistent, exit 0 [${dialect}]`, async (t) => {
    // Registered first, so it runs first: a failed test's server goes before its database does.
    let server: ServeProcess | undefined;
    t.after(async () => {
      server?.kill("SIGKILL");
      await server?.exited;
    });
    const store = await openTestStore(t, dialect);
    if (!store) return;

    // An account on a billed plan with credit, an API key and a password (for the web app).
    await savePlan(store.db, { id: "pro", name: "Pro", billed: true, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
    await savePriceSet(store.db, { model: "*", base: { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 }, windows: [] }, null);
    const passwordHash = await new PasswordHasher(TEST_PASSWORD_HASHING).hash(TEST_PASSWORD);
    const user = await insertUser(store.db, { username: "drain", email: null, passwordHash, role: "user", status: "active", planId: "pro" });
    const key = (await createApiKey(store.db, { userId: user.id, name: "drain", models: null, expiresAt: null })).key;
    await addCredit(store.db, { userId: user.id, kind: "topped_up", amountMicros: CREDIT, source: "admin" });

    // On SQLite the database lives in the data dir; on PostgreSQL the data dir is the server's own.
    const dataDir = dialect === "sqlite" ? store.options.dataDir : await mkdtemp(join(tmpdir(), "sputnik-drain-"));
    if (dialect !== "sqlite") t.after(() => rm(dataDir, { recursive: true, force: true }));
    const configFile = join(dataDir, `drain-${dialect}.json`);
    await writeServeConfig(configFile, {
      dataDir,
      models: [await ensureModel(SHORT)],
      remoteModels: [{ id: LONG, baseUrl: upstreamUrl, maxConcurrency: 4, contextLength: 4096 }],
      parallel: 4,
      contextSize: 2048,
      shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
      ...(dialect === "postgres" ? { databaseUrl: store.options.url, database: { schema: store.options.schema } } : {}),
      localEngine: { contextCache: { enabled: false } },
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
    });
    server = await startServeProcess(configFile);
    const api = apiOf(server, key);
    const browser = new AppClient(server.url);
    assert.equal((await browser.post("/api/auth/login", { login: "drain", password: TEST_PASSWORD })).status, 200);
    const web = webOf(server, browser);
    assert.deepEqual(await probe(server, "/readyz"), [200, "ready"]);

    // 4 long streams take the slow model's 4 places: two on /v1, one on /anthropic, one web reply.
    const long = {
      openai: [await api.openai(LONG, LONG_TOKENS, true), await api.openai(LONG, LONG_TOKENS, true)],
      anthropic: await api.anthropic(LONG, LONG_TOKENS, true),
      web: await web.reply(LONG, "Think at length"),
    };
    await Promise.all([...long.openai.map((s) => s.first(openaiText)), long.anthropic.first(anthropicText), long.web.first(webText)]);

    // 4 requests wait in the slow model's queue: /v1 plain and streamed, /anthropic, a web reply.
    const queuedOpenai = api.openaiResponse(LONG, 16, false);
    const queuedAnthropic = api.anthropicResponse(LONG, 16, false);
    const queuedStream = await api.openai(LONG, 16, true);
    const queuedWeb = await web.reply(LONG, "Wait your turn");
    await until(async () => (await metric(server, `sputnik_queue_length{model="${LONG}"}`)) === 4, "4 requests waiting for the slow model");

    // 4 short streams on scripted-long: running when SIGTERM comes, finished well within the timeout.
    // The web reply (the whole script) first, as it takes longest to get going; then the API ones
    // together, so none is done before the last one starts.
    const shortWeb = await web.reply(SHORT, "Think it through");
    await shortWeb.first(webText);
    const [openaiA, openaiB, anthropicShort] = await Promise.all([
      api.openai(SHORT, SHORT_TOKENS, true),
      api.openai(SHORT, 2 * SHORT_TOKENS, true),
      api.anthropic(SHORT, 2 * SHORT_TOKENS, true),
    ]);
    const short = { openai: [openaiA, openaiB], anthropic: anthropicShort, web: shortWeb };
    await Promise.all([...short.openai.map((s) => s.first(openaiText)), short.anthropic.first(anthropicText)]);
    const running = [...long.openai, long.anthropic, long.web, ...short.openai, short.anthropic, short.web];
    assert.equal(running.filter((s) => s.endedAt === null).length, 8, "8 streams running at SIGTERM");

    const sigterm = performance.now();
    server.kill("SIGTERM");

    // Readiness goes at once; liveness stays; new requests are refused in each API's shape.
    await until(async () => (await probe(server, "/readyz"))[0] === 503, "/readyz to turn 503", 2_000);
    const readyAfterMs = performance.now() - sigterm;
    assert.deepEqual(await probe(server, "/readyz"), [503, "draining"]);
    assert.deepEqual(await probe(server, "/livez"), [200, "ok"]);
    assert.equal(await metric(server, "sputnik_draining"), 1);
    const refusedOpenai = await api.openaiResponse(SHORT, 8, false);
    assertRefused(refusedOpenai, "openai", await refusedOpenai.json());
    const refusedAnthropic = await api.anthropicResponse(SHORT, 8, true);
    assertRefused(refusedAnthropic, "anthropic", await refusedAnthropic.json());
    const refusedApp = await browser.get("/api/conversations");
    assert.equal(refusedApp.status, 503);
    assert.equal(refusedApp.headers["retry-after"], "5");
    assert.equal(refusedApp.body.error.code, "shutting_down", "the web app's error shape");
    const newestRefusalMs = performance.now() - sigterm;

    // Queued requests: refused the same way (a stream that opened while waiting: the error event).
    const plain = await queuedOpenai;
    assertRefused(plain, "openai", await plain.json());
    const plainAnthropic = await queuedAnthropic;
    assertRefused(plainAnthropic, "anthropic", await plainAnthropic.json());
    await queuedStream.ended;
    assert.ok(queuedStream.events.some((e) => e.event === "comment" && e.data.includes("queue_position")), "it waited in line");
    assert.deepEqual(openaiEnd(queuedStream), { error: "shutting_down", done: true });
    assert.equal(openaiText(queuedStream), "");
    await queuedWeb.ended;
    const queuedWebError = webEvents(queuedWeb).at(-1)!;
    assert.equal(queuedWebError.type, "error");
    assert.deepEqual([queuedWebError.error.code, queuedWebError.error.status, queuedWebError.message.status], ["server_restarting", 503, "error"]);
    assert.ok(queuedWebError.error.retry_after_s > 0);

    // Every running stream either finished normally within the timeout, or was cut at it with its
    // surface's error event. The long ones cannot finish; the short ones do unless the machine is
    // so loaded that scripted-long cannot write a few hundred tokens in the timeout (then they are
    // cut like the long ones, which the rest of this test accepts).
    await Promise.all(running.map((s) => s.ended));
    const ends = new Map<Stream, "completed" | "cut">();
    for (const [surface, streams] of [["openai", [...long.openai, ...short.openai]], ["anthropic", [long.anthropic, short.anthropic]], ["web", [long.web, short.web]]] as const) {
      for (const s of streams) ends.set(s, endOf(surface, s));
    }
    for (const [s, end] of ends) {
      const at = s.endedAt! - sigterm;
      if (end === "completed") assert.ok(at < SHUTDOWN_TIMEOUT_MS + 1_000, `a stream that finished did so within the timeout (${Math.round(at)} ms)`);
      else assert.ok(at >= SHUTDOWN_TIMEOUT_MS - 250 && at < SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS, `a stream was cut at the timeout, not before (${Math.round(at)} ms)`);
    }
    for (const s of [...long.openai, long.anthropic, long.web]) assert.equal(ends.get(s), "cut", "a long stream cannot finish in time");
    const finishedInDrain = [...short.openai, short.anthropic, short.web].filter((s) => ends.get(s) === "completed" && s.endedAt! > sigterm);
    assert.ok(finishedInDrain.length > 0, "streams running at SIGTERM finished during the drain");
    for (const s of short.openai.filter((s) => ends.get(s) === "completed")) assert.ok(s.events.some((e) => e.data.includes('"finish_reason":"length"')), "ended by max_tokens");
    for (const s of [...long.openai, long.anthropic, long.web]) assert.ok(textOf(s).length > 0, "it had written something");
    const completedStreams = [...ends.values()].filter((e) => e === "completed").length;

    // The process exits 0, within the timeout plus the margin.
    await server.exited;
    const exitMs = performance.now() - sigterm;
    assert.equal(server.exitCode(), 0, server.output().slice(-3000));
    assert.ok(exitMs < SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS, `exited ${Math.round(exitMs)} ms after SIGTERM`);
    t.diagnostic(
      `/readyz 503 after ${Math.round(readyAfterMs)} ms; new requests refused by ${Math.round(newestRefusalMs)} ms; ${completedStreams} of 8 streams finished in the drain; exit after ${Math.round(exitMs)} ms`,
    );

    // The books, read from the database directly.
    const ledger = await store.db.selectFrom("usage_ledger").selectAll().execute();
    const logged = await store.db.selectFrom("request_log").selectAll().execute();
    assert.equal(ledger.length, 12, "one ledger row per admitted request: 8 running, 4 queued; none for the refused new ones");
    assert.deepEqual(logged.map((r) => r.id).sort(), ledger.map((r) => r.id).sort(), "each with its request log row (same id)");
    assert.ok(ledger.every((r) => r.status !== "open" && r.holder === null), "nothing left open");
    const logOf = new Map(logged.map((r) => [r.id, r]));
    const tokens = (r: (typeof ledger)[number]) => r.reasoning_tokens + r.answer_tokens;
    const completed = ledger.filter((r) => r.status === "completed");
    const cut = ledger.filter((r) => r.status !== "completed" && tokens(r) > 0);
    const refused = ledger.filter((r) => tokens(r) === 0);
    assert.equal(completed.length, completedStreams, "each stream that finished is settled completed");
    assert.ok(completed.every((r) => r.model === SHORT));
    assert.equal(cut.length, 8 - completedStreams, "each cut stream: billed for what it generated");
    assert.deepEqual(refused.map((r) => r.model), [LONG, LONG, LONG, LONG], "the queued ones generated nothing");
    for (const row of [...cut, ...refused]) {
      assert.equal(row.status, "failed");
      assert.deepEqual([logOf.get(row.id)!.status, logOf.get(row.id)!.error_code], [503, "shutting_down"]);
    }
    for (const row of completed) assert.equal(logOf.get(row.id)!.status, 200);
    for (const row of [...completed, ...cut]) {
      assert.ok(row.charged_micros > 0 && row.charged_micros === row.cost_micros, "tokens generated are billed");
    }
    for (const row of refused) assert.equal(row.charged_micros, 0);
    for (const row of ledger) {
      assert.equal(logOf.get(row.id)!.completion_tokens, tokens(row), "log and ledger agree on the tokens");
      const items = await store.db.selectFrom("ledger_items").selectAll().where("entry_id", "=", row.id).execute();
      assert.equal(
        items.reduce((sum, i) => sum + i.amount_micros, 0),
        row.cost_micros,
        "cost is the sum of its line items",
      );
    }
    // The /v1 short streams that finished reported the usage that was billed.
    for (const [i, s] of short.openai.entries()) {
      if (ends.get(s) !== "completed") continue;
      const usage = JSON.parse(s.events.find((e) => e.data.includes('"usage":{'))!.data).usage;
      assert.equal(usage.completion_tokens, (i + 1) * SHORT_TOKENS);
      assert.ok(completed.some((r) => tokens(r) === usage.completion_tokens));
    }
    const balance = await getBalance(store.db, user.id);
    assert.equal(balance.reservedMicros, 0, "every reservation released");
    assert.equal(
      CREDIT - balance.toppedUpMicros,
      ledger.reduce((sum, r) => sum + r.charged_micros, 0),
      "the balance moved by exactly what the ledger charged: no charge lost, none twice",
    );

    // The web app's answers as stored: complete, interrupted with its text so far, never started.
    const answers = await store.db.selectFrom("messages").selectAll().where("role", "=", "assistant").execute();
    const stored = (id: string) => answers.find((m) => m.id === id)!;
    const shortAnswer = stored(startOf(short.web).assistant_message.id);
    if (ends.get(short.web) === "completed") {
      assert.deepEqual([shortAnswer.status, shortAnswer.reasoning, shortAnswer.content], ["complete", MODEL_SCRIPTS[SHORT]!.reasoning, MODEL_SCRIPTS[SHORT]!.answer]);
    } else {
      assert.equal(shortAnswer.status, "interrupted");
      assert.equal(shortAnswer.reasoning + shortAnswer.content, webText(short.web));
    }
    const cutAnswer = stored(startOf(long.web).assistant_message.id);
    assert.equal(cutAnswer.status, "interrupted");
    assert.match(cutAnswer.error ?? "", /server restarted/i);
    assert.equal(cutAnswer.reasoning + cutAnswer.content, webText(long.web), "the text the user saw is the text stored");
    assert.ok(cutAnswer.completion_tokens > 0);
    assert.ok(cut.some((r) => tokens(r) === cutAnswer.completion_tokens), "its tokens are the ones billed");
    const neverStarted = stored(startOf(queuedWeb).assistant_message.id);
    assert.deepEqual([neverStarted.status, neverStarted.content, neverStarted.reasoning], ["error", "", ""]);
    const questions = await store.db.selectFrom("messages").select("content").where("role", "=", "user").execute();
    assert.deepEqual(questions.map((q) => q.content).sort(), ["Think at length", "Think it through", "Wait your turn"]);
  });
}

/**
 * An OpenAI-compatible upstream that never finishes: a reasoning token, then content tokens, one
 * every SLOW_TOKEN_MS, until the gateway hangs up.
 */
function slowUpstream(): Server {
  return createServer((request, response) => {
    if (request.method === "GET") {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [{ id: LONG, object: "model" }] }));
      return;
    }
    request.resume();
    response.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: object) => `data: ${JSON.stringify({ id: "slow", object: "chat.completion.chunk", created: 0, model: LONG, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    response.write(chunk({ role: "assistant", content: "" }));
    let n = 0;
    const timer = setInterval(() => {
      n++;
      response.write(chunk(n <= 3 ? { reasoning_content: `thought${n} ` } : { content: `word${n} ` }));
    }, SLOW_TOKEN_MS);
    response.on("close", () => clearInterval(timer));
  });
}

interface SseEvent {
  /** The `event:` name, "message" when none, or "comment" for `: …` lines. */
  event: string;
  data: string;
}

/** An SSE response read as it arrives: its events and when it ended. */
class Stream {
  readonly events: SseEvent[] = [];
  endedAt: number | null = null;
  readonly ended: Promise<void>;
  private readonly waiters = new Set<() => void>();

  constructor(readonly response: Response) {
    assert.equal(response.status, 200);
    this.ended = this.read();
  }

  /** Resolves once `text(this)` is not empty (the first token arrived). */
  first(text: (s: Stream) => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (text(this) !== "") {
          this.waiters.delete(check);
          resolve();
        } else if (this.endedAt !== null) reject(new Error(`the stream ended before its first token: ${JSON.stringify(this.events)}`));
      };
      this.waiters.add(check);
      check();
    });
  }

  private async read(): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of this.response.body!) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
        this.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
      }
      for (const waiter of [...this.waiters]) waiter();
    }
    this.endedAt = performance.now();
    for (const waiter of [...this.waiters]) waiter();
  }

  private parse(block: string): void {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.events.push({ event: "comment", data: line.slice(1).trim() });
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length > 0) this.events.push({ event, data: data.join("\n") });
  }
}

function apiOf(server: ServeProcess, key: string) {
  const messages = (text: string) => [{ role: "user", content: text }];
  const openaiResponse = (model: string, maxTokens: number, stream: boolean) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, stream, max_tokens: maxTokens, ...(stream ? { stream_options: { include_usage: true } } : {}), messages: messages("Think, then answer") }),
    });
  const anthropicResponse = (model: string, maxTokens: number, stream: boolean) =>
    fetch(`${server.url}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model, stream, max_tokens: maxTokens, messages: messages("Think, then answer") }),
    });
  return {
    openaiResponse,
    anthropicResponse,
    openai: async (model: string, maxTokens: number, stream: true) => new Stream(await openaiResponse(model, maxTokens, stream)),
    anthropic: async (model: string, maxTokens: number, stream: true) => new Stream(await anthropicResponse(model, maxTokens, stream)),
  };
}

function webOf(server: ServeProcess, browser: AppClient) {
  return {
    async reply(model: string, content: string): Promise<Stream> {
      const conversation = (await browser.post("/api/conversations", {})).body;
      const response = await browser.stream(`/api/conversations/${conversation.id}/messages`, { content, parent_id: null, model });
      return new Stream(response);
    },
  };
}

/** The text a /v1 stream carried so far (reasoning and content). */
function openaiText(s: Stream): string {
  let text = "";
  for (const e of s.events) {
    if (e.event !== "message" || e.data === "[DONE]") continue;
    const delta = JSON.parse(e.data).choices?.[0]?.delta;
    text += (delta?.reasoning_content ?? "") + (delta?.content ?? "");
  }
  return text;
}

/**
 * How a running stream ended, checked against its surface's rules: finished normally, or cut by
 * the drain with the error event (/v1: an error chunk `shutting_down` then `[DONE]`; Anthropic: an
 * `error` event, overloaded_error; the web app: an `error` event `server_restarting` with the
 * answer as stored, interrupted).
 */
function endOf(surface: "openai" | "anthropic" | "web", s: Stream): "completed" | "cut" {
  if (surface === "openai") {
    const end = openaiEnd(s);
    assert.equal(end.done, true, "a /v1 stream always ends with [DONE]");
    if (end.error === null) return "completed";
    assert.equal(end.error, "shutting_down");
    return "cut";
  }
  if (surface === "anthropic") {
    const last = s.events.at(-1)!;
    if (last.event === "message_stop") return "completed";
    assert.equal(last.event, "error");
    assert.equal(JSON.parse(last.data).error.type, "overloaded_error");
    return "cut";
  }
  const end = webEvents(s).find((e) => e.type === "done" || e.type === "error");
  if (end?.type === "done") {
    assert.equal(end.message.status, "complete");
    return "completed";
  }
  assert.deepEqual([end?.error.code, end?.error.status, end?.message.status], ["server_restarting", 503, "interrupted"]);
  assert.match(end.error.message, /server restarted/i);
  return "cut";
}

function textOf(s: Stream): string {
  return openaiText(s) || anthropicText(s) || webText(s);
}

/** How a /v1 stream ended: the error event's code before `[DONE]`, if any. */
function openaiEnd(s: Stream): { error: string | null; done: boolean } {
  const data = s.events.filter((e) => e.event === "message").map((e) => e.data);
  const error = data.map((d) => (d === "[DONE]" ? null : JSON.parse(d).error)).find(Boolean);
  if (error) assert.equal(error.type, "service_unavailable");
  return { error: error?.code ?? null, done: data.at(-1) === "[DONE]" };
}

function anthropicText(s: Stream): string {
  return s.events
    .filter((e) => e.event === "content_block_delta")
    .map((e) => {
      const delta = JSON.parse(e.data).delta;
      return delta.thinking ?? delta.text ?? "";
    })
    .join("");
}

function webEvents(s: Stream): any[] {
  return s.events.filter((e) => e.event === "message").map((e) => JSON.parse(e.data));
}

function webText(s: Stream): string {
  return webEvents(s)
    .filter((e) => e.type === "reasoning" || e.type === "content")
    .map((e) => e.text)
    .join("");
}

function startOf(s: Stream): any {
  return webEvents(s).find((e) => e.type === "start");
}

function assertRefused(response: Response, shape: "openai" | "anthropic", body: any): void {
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("retry-after"), "5");
  if (shape === "openai") assert.deepEqual([body.error.type, body.error.code], ["service_unavailable", "shutting_down"]);
  else assert.deepEqual([body.type, body.error.type], ["error", "overloaded_error"]);
}

async function probe(server: ServeProcess, path: string): Promise<[number, string]> {
  const response = await fetch(`${server.url}${path}`);
  return [response.status, ((await response.json()) as { status: string }).status];
}

/** A value of `/metrics` (the exact series, e.g. `sputnik_queue_length{model="slow"}`); NaN when absent. */
async function metric(server: ServeProcess, series: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

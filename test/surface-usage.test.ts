/**
 * One pipeline, several API shapes: the same work costs the same on /v1/chat/completions and on
 * /anthropic/v1/messages — usage (cache hits included), the ledger entry, the request log row and
 * the balance; /v1/completions reports, logs and bills by the same fields and rules, and work of
 * the same size (a raw prompt cannot carry the chat template's special tokens) costs the same on
 * all three — and Sputnik API keys work on /anthropic in either header (`x-api-key`,
 * `Authorization: Bearer`), with the same scope and revocation rules as on /v1.
 *
 * The service runs ONE sequence, so which cached tokens a prompt can reuse does not depend on
 * which sequence it lands on: a warm-up leaves the shared template prefix cached, a first request
 * on each surface reuses exactly that, and its repetition reuses its whole prompt.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { createApiKey, revokeApiKey } from "../src/auth/apiKeys.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit, getBalance } from "../src/billing/balances.ts";
import { savePlan, type Plan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { costMicros } from "../src/billing/pricing.ts";
import type { LocalEngine } from "../src/engines/local/localEngine.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startTestService, type TestService } from "./support/service.ts";

const R1 = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
const PLAN: Plan = {
  id: "pro",
  name: "Pro",
  billed: true,
  allowedModels: null,
  dailyTokenQuota: null,
  monthlyTokenQuota: null,
  maxThinkingBudget: null,
  concurrencyWeight: 1,
  features: [],
};
const scripted = MODEL_SCRIPTS.scripted!;
let service: TestService;
let user: { id: string; key: string; keyId: string };

before(async () => {
  service = await startTestService({ models: ["scripted"], config: { parallel: 1 } });
  const db = service.store.db;
  await savePriceSet(db, { model: "*", base: R1, windows: [] }, null);
  await savePlan(db, PLAN);
  const row = await insertUser(db, { username: "surfaces", email: null, passwordHash: "unused", role: "user", status: "active", planId: PLAN.id });
  const { key, row: keyRow } = await createApiKey(db, { userId: row.id, name: "k", models: null, expiresAt: null });
  await addCredit(db, { userId: row.id, kind: "granted", amountMicros: 1_000_000_000, source: "admin" });
  user = { id: row.id, key, keyId: keyRow.id };
});
after(() => service.stop());

const balance = async () => {
  const b = await getBalance(service.store.db, user.id);
  return b.grantedMicros + b.toppedUpMicros;
};
const lastLedger = () =>
  service.store.db.selectFrom("usage_ledger").selectAll().where("user_id", "=", user.id).orderBy("started_at", "desc").limit(1).executeTakeFirstOrThrow();
const lastLog = () =>
  service.store.db.selectFrom("request_log").selectAll().where("user_id", "=", user.id).orderBy("created_at", "desc").limit(1).executeTakeFirstOrThrow();

/** What a request left on the books, without ids and times. */
async function books(before: number) {
  const entry = await lastLedger();
  const log = await lastLog();
  return {
    paid: before - (await balance()),
    ledger: {
      status: entry.status,
      api_key_id: entry.api_key_id,
      cache_hit_tokens: entry.cache_hit_tokens,
      cache_miss_tokens: entry.cache_miss_tokens,
      reasoning_tokens: entry.reasoning_tokens,
      answer_tokens: entry.answer_tokens,
      reserved_micros: entry.reserved_micros,
      cost_micros: entry.cost_micros,
      charged_micros: entry.charged_micros,
    },
    log: {
      status: log.status,
      stream: log.stream,
      prompt_tokens: log.prompt_tokens,
      completion_tokens: log.completion_tokens,
      reasoning_tokens: log.reasoning_tokens,
      cache_hit_tokens: log.cache_hit_tokens,
      cache_miss_tokens: log.cache_miss_tokens,
    },
  };
}

/** Usage in one vocabulary: DeepSeek's fields from /v1, and what Anthropic's fields mean. */
interface Seen {
  prompt: number;
  hit: number;
  miss: number;
  completion: number;
  reasoning: number;
}

const question = (n: string) => `Count the cost of request number ${n}, please.`;

test("the same work costs the same on /v1/chat/completions and /anthropic/v1/messages: usage, cache hits, ledger, request log, balance", async () => {
  const engine = service.router.engineFor("scripted") as LocalEngine;
  const tokens = (text: string) => engine.get("scripted")!.promptTokens({ model: "scripted", messages: [{ role: "user", content: text }] }).length;
  assert.equal(tokens(question("1111")), tokens(question("2222")), "the two prompts are the same size (same work)");

  const openai = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: user.key, maxRetries: 0 });
  const anthropic = new Anthropic({ baseURL: `${service.url}/anthropic`, apiKey: user.key, maxRetries: 0 });
  // Leaves the template's start and "Count the cost of request number " cached: both surfaces' first requests reuse that much.
  await openai.chat.completions.create({ model: "scripted", max_tokens: 200, messages: [{ role: "user", content: question("0000") }] });

  const v1 = async (stream: boolean): Promise<Seen> => {
    const messages = [{ role: "user" as const, content: question("1111") }];
    let usage: any;
    if (stream) {
      const chunks = await openai.chat.completions.create({ model: "scripted", max_tokens: 200, messages, stream: true, stream_options: { include_usage: true } });
      for await (const chunk of chunks) usage = chunk.usage ?? usage;
    } else {
      usage = (await openai.chat.completions.create({ model: "scripted", max_tokens: 200, messages })).usage;
    }
    return { prompt: usage.prompt_tokens, hit: usage.prompt_cache_hit_tokens, miss: usage.prompt_cache_miss_tokens, completion: usage.completion_tokens, reasoning: usage.completion_tokens_details.reasoning_tokens };
  };
  const messages = async (stream: boolean): Promise<Seen> => {
    const params = { model: "scripted", max_tokens: 200, messages: [{ role: "user" as const, content: question("2222") }] };
    const message = stream ? await anthropic.messages.stream(params).finalMessage() : await anthropic.messages.create(params);
    assert.deepEqual(message.content.at(-1), { type: "text", text: scripted.answer });
    const u = message.usage;
    // Anthropic's input_tokens are the prompt tokens NOT read from the cache.
    return { prompt: u.input_tokens + u.cache_read_input_tokens!, hit: u.cache_read_input_tokens!, miss: u.input_tokens, completion: u.output_tokens, reasoning: u.output_tokens_details!.thinking_tokens };
  };

  const run = async (surface: (stream: boolean) => Promise<Seen>, stream: boolean) => {
    const before = await balance();
    const seen = await surface(stream);
    const onBooks = await books(before);
    // What the client was told is what was logged and billed.
    assert.deepEqual(
      [onBooks.log.prompt_tokens, onBooks.log.cache_hit_tokens, onBooks.log.cache_miss_tokens, onBooks.log.completion_tokens, onBooks.log.reasoning_tokens],
      [seen.prompt, seen.hit, seen.miss, seen.completion, seen.reasoning],
    );
    assert.equal(onBooks.ledger.cost_micros, costMicros({ cacheHit: seen.hit, cacheMiss: seen.miss, output: seen.completion }, R1));
    assert.equal(onBooks.paid, onBooks.ledger.charged_micros);
    return { seen, onBooks };
  };

  const v1Cold = await run(v1, false);
  const v1Warm = await run(v1, true);
  const anthropicCold = await run(messages, false);
  const anthropicWarm = await run(messages, true);

  assert.ok(v1Cold.seen.hit > 0 && v1Cold.seen.miss > 0, `a first request reuses the shared start only (${JSON.stringify(v1Cold.seen)})`);
  assert.equal(v1Warm.seen.miss, 1, "a repeated prompt reuses all of it but the token that is re-evaluated for fresh logits");
  assert.deepEqual(anthropicCold, v1Cold);
  assert.deepEqual(anthropicWarm, v1Warm);
});

test("/v1/completions reports, logs and bills its usage in the same fields and by the same rules (a repeated prompt reuses all but one token)", async () => {
  const complete = async (stream: boolean): Promise<Seen> => {
    const response = await fetch(`${service.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: "scripted", prompt: question("3333"), max_tokens: 16, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }),
    });
    assert.equal(response.status, 200);
    let usage: any;
    if (stream) {
      for (const line of (await response.text()).split("\n")) {
        if (!line.startsWith("data: {")) continue;
        usage = JSON.parse(line.slice(6)).usage ?? usage;
      }
    } else {
      usage = ((await response.json()) as any).usage;
    }
    return { prompt: usage.prompt_tokens, hit: usage.prompt_cache_hit_tokens, miss: usage.prompt_cache_miss_tokens, completion: usage.completion_tokens, reasoning: usage.completion_tokens_details?.reasoning_tokens ?? 0 };
  };
  for (const stream of [false, true]) {
    const before = await balance();
    const seen = await complete(stream);
    const onBooks = await books(before);
    assert.deepEqual(
      [onBooks.log.prompt_tokens, onBooks.log.cache_hit_tokens, onBooks.log.cache_miss_tokens, onBooks.log.completion_tokens, onBooks.log.reasoning_tokens],
      [seen.prompt, seen.hit, seen.miss, seen.completion, seen.reasoning],
    );
    assert.equal(seen.hit + seen.miss, seen.prompt);
    assert.equal(onBooks.ledger.cost_micros, costMicros({ cacheHit: seen.hit, cacheMiss: seen.miss, output: seen.completion }, R1));
    assert.equal(onBooks.paid, onBooks.ledger.charged_micros);
    if (stream) assert.equal(seen.miss, 1, "the repeated prompt reused all but the re-evaluated token, as on chat");
  }
});

/**
 * The same work on all three surfaces. /v1/completions cannot be sent the chat prompt's very
 * tokens: the chat template's markers (`<｜User｜>`, `<｜Assistant｜>`) are special tokens, and a
 * raw prompt's text is tokenized as text (special-token text in it stays text, on purpose), with
 * no token-id prompts. So "the same work" is work of the same size in every billed dimension: a
 * raw prompt of the chat prompt's length, of which exactly as many tokens are in the cache, that
 * makes the model write as many tokens. Then usage, request log and ledger must agree field for
 * field, cold and repeated — except the reasoning/answer split: a raw completion has no reasoning
 * channel, so the chat's reasoning tokens are answer tokens there (same price, same total).
 */
test("work of the same size costs the same on /v1/chat/completions, /anthropic/v1/messages and /v1/completions: usage, cache hits, ledger, request log", async () => {
  const model = (service.router.engineFor("scripted") as LocalEngine).get("scripted")!;
  const chatTokens = (text: string) => model.promptTokens({ model: "scripted", messages: [{ role: "user", content: text }] });
  const rawTokens = (prompt: string) => model.promptTokens({ model: "scripted", messages: [], completion: { prompt } });
  const maxTokens = 6; // inside the script's reasoning on chat, inside its continuation on the raw prompt: "length" on all
  // Unseen first words: neither prompt shares more than the template's start with anything cached.
  const chatQuestion = "Judge the price of job 5555, please.";
  const anthropicQuestion = "Grade the price of job 5555, please.";
  const size = chatTokens(chatQuestion).length;
  assert.equal(chatTokens(anthropicQuestion).length, size, "the chat and Anthropic prompts are the same size");
  // A raw prompt of the same size that ends where the script's reasoning goes on, so the scripted
  // model writes as many tokens as on chat (it continues "…The user asks a" with " question. I …").
  const tail = " The user asks a";
  let filler = "Quietly";
  while (rawTokens(`${filler}${tail}`).length < size) filler += "!";
  const rawPrompt = `${filler}${tail}`;
  assert.equal(rawTokens(rawPrompt).length, size, "the raw prompt is as long as the chat prompt");

  const openai = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: user.key, maxRetries: 0 });
  const anthropic = new Anthropic({ baseURL: `${service.url}/anthropic`, apiKey: user.key, maxRetries: 0 });
  type Usage = Seen & { answer: number };
  const chat = async (): Promise<Usage> => {
    const u = (await openai.chat.completions.create({ model: "scripted", max_tokens: maxTokens, messages: [{ role: "user", content: chatQuestion }] })).usage as any;
    const reasoning = u.completion_tokens_details.reasoning_tokens;
    return { prompt: u.prompt_tokens, hit: u.prompt_cache_hit_tokens, miss: u.prompt_cache_miss_tokens, completion: u.completion_tokens, reasoning, answer: u.completion_tokens - reasoning };
  };
  const messages = async (): Promise<Usage> => {
    const u = (await anthropic.messages.create({ model: "scripted", max_tokens: maxTokens, messages: [{ role: "user", content: anthropicQuestion }] })).usage;
    const reasoning = u.output_tokens_details!.thinking_tokens;
    return { prompt: u.input_tokens + u.cache_read_input_tokens!, hit: u.cache_read_input_tokens!, miss: u.input_tokens, completion: u.output_tokens, reasoning, answer: u.output_tokens - reasoning };
  };
  const complete = (prompt: string) => async (): Promise<Usage> => {
    const response = await fetch(`${service.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ model: "scripted", prompt, max_tokens: maxTokens, temperature: 0 }),
    });
    assert.equal(response.status, 200);
    const u = ((await response.json()) as any).usage;
    const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
    return { prompt: u.prompt_tokens, hit: u.prompt_cache_hit_tokens, miss: u.prompt_cache_miss_tokens, completion: u.completion_tokens, reasoning, answer: u.completion_tokens - reasoning };
  };
  /** Usage, request log and ledger of one request, in one comparable shape (no ids, times or stream flag). */
  const run = async (surface: () => Promise<Usage>) => {
    const before = await balance();
    const usage = await surface();
    const { paid, ledger, log } = await books(before);
    assert.equal(paid, ledger.charged_micros);
    assert.deepEqual([log.reasoning_tokens, ledger.reasoning_tokens, ledger.answer_tokens], [usage.reasoning, usage.reasoning, usage.answer]);
    const { reasoning_tokens: _r, answer_tokens: _a, ...billed } = ledger;
    const { reasoning_tokens: _lr, stream: _s, ...logged } = log;
    return { usage: { prompt: usage.prompt, hit: usage.hit, miss: usage.miss, completion: usage.completion }, output: usage.reasoning + usage.answer, billed, logged, paid };
  };

  // As in the first test: the template's start is cached whatever ran before (this test may run alone).
  await openai.chat.completions.create({ model: "scripted", max_tokens: maxTokens, messages: [{ role: "user", content: question("0000") }] });
  const chatCold = await run(chat);
  const chatWarm = await run(chat);
  const anthropicCold = await run(messages);
  const anthropicWarm = await run(messages);
  // The raw prompt's cold case reuses as many tokens as the chat's did: a raw prompt sharing
  // exactly that many leading tokens (BOS + text) is evaluated just before it (one sequence).
  const shared = rawTokens(rawPrompt).slice(0, chatCold.usage.hit);
  const sharedText = model.model.detokenize(shared.filter((t) => t !== model.model.tokens.bos));
  await complete(`${sharedText} zebra crossing ahead`)();
  const rawCold = await run(complete(rawPrompt));
  const rawWarm = await run(complete(rawPrompt));

  assert.equal(chatCold.usage.prompt, size);
  assert.equal(chatCold.usage.completion, maxTokens);
  assert.ok(chatCold.usage.hit > 0 && chatCold.usage.miss > 0, `cold: the template's start is cached, the rest is not (${JSON.stringify(chatCold.usage)})`);
  assert.equal(chatWarm.usage.miss, 1, "repeated: all but the re-evaluated token is reused");
  assert.deepEqual(anthropicCold, chatCold, "/anthropic cold = /v1/chat cold");
  assert.deepEqual(anthropicWarm, chatWarm, "/anthropic repeated = /v1/chat repeated");
  assert.deepEqual(rawCold, chatCold, "/v1/completions cold = /v1/chat cold");
  assert.deepEqual(rawWarm, chatWarm, "/v1/completions repeated = /v1/chat repeated");
});

test("Sputnik API keys on /anthropic: x-api-key and Authorization: Bearer both work; scope and revocation apply as on /v1", async () => {
  const post = (headers: Record<string, string>, model = "scripted") =>
    fetch(`${service.url}/anthropic/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
      body: JSON.stringify({ model, max_tokens: 100, messages: [{ role: "user", content: "Whose key is this?" }] }),
    });
  for (const headers of [{ "x-api-key": user.key }, { authorization: `Bearer ${user.key}` }] as Array<Record<string, string>>) {
    const response = await post(headers);
    assert.equal(response.status, 200, JSON.stringify(headers));
    assert.ok(response.headers.get("x-ratelimit-limit-requests"), "the key's rate-limit headers, as on /v1");
    assert.equal((await lastLedger()).api_key_id, user.keyId, "billed to the key's account");
  }
  // The Anthropic SDK with `authToken` sends the Bearer form.
  const bearer = new Anthropic({ baseURL: `${service.url}/anthropic`, authToken: user.key, apiKey: null, maxRetries: 0 });
  assert.equal((await bearer.messages.create({ model: "scripted", max_tokens: 100, messages: [{ role: "user", content: "Bearer" }] })).type, "message");

  const db = service.store.db;
  const scoped = await createApiKey(db, { userId: user.id, name: "scoped", models: ["other-model"], expiresAt: null });
  const hidden = await post({ "x-api-key": scoped.key });
  assert.equal(hidden.status, 404, "a key scoped to other models sees no such model");
  assert.equal(((await hidden.json()) as any).error.type, "not_found_error");
  await revokeApiKey(db, scoped.row.id);
  const revoked = await post({ "x-api-key": scoped.key });
  assert.equal(revoked.status, 401);
  assert.deepEqual(((await revoked.json()) as any).error.type, "authentication_error");
  const malformed = await post({ "x-api-key": "" });
  assert.equal(malformed.status, 401);
});

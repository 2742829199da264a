/**
 * One pipeline, several API shapes: the same work costs the same on /v1/chat/completions and on
 * /anthropic/v1/messages — usage (cache hits included), the ledger entry, the request log row and
 * the balance; /v1/completions (a raw prompt, so not the same work) reports, logs and bills by the
 * same fields and rules — and Sputnik API keys work on /anthropic in either header (`x-api-key`,
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

/**
 * Billing through the real service in local single-user mode (no accounts; requests carry the
 * local key): every request is metered — one ledger row, settled with the engine's real usage in the
 * same transaction as the request log row — and nothing is ever charged.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { costMicros } from "../src/billing/pricing.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import type { LedgerRow } from "../src/billing/ledger.ts";
import { startTestService, type TestService } from "./support/service.ts";

const R1 = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
let service: TestService;

before(async () => {
  service = await startTestService({ models: ["scripted", "scripted-long"] });
  await savePriceSet(service.store.db, { model: "*", base: R1, windows: [] }, null);
});
after(() => service.stop());

async function ledger(): Promise<LedgerRow[]> {
  return service.store.db.selectFrom("usage_ledger").selectAll().orderBy("started_at").execute();
}

/** Polls until `check` passes: settlement runs after the response has gone out. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("a completion is metered: one ledger row with the engine's real usage, the request log row shares its id", async () => {
  const before = (await ledger()).length;
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "Meter me" }] }),
  });
  assert.equal(response.status, 200);
  const usage = ((await response.json()) as { usage: any }).usage;
  const rows = await eventually(ledger, (r) => r.length === before + 1 && r.at(-1)!.status !== "open", "the settled ledger row");
  const row = rows.at(-1)!;
  assert.equal(row.status, "completed");
  assert.equal(row.user_id, null);
  assert.equal(row.billed, 0);
  assert.equal(row.cache_hit_tokens + row.cache_miss_tokens, usage.prompt_tokens);
  assert.equal(row.cache_hit_tokens, usage.prompt_cache_hit_tokens);
  assert.equal(row.reasoning_tokens, usage.completion_tokens_details.reasoning_tokens);
  assert.equal(row.reasoning_tokens + row.answer_tokens, usage.completion_tokens);
  assert.equal(row.cost_micros, costMicros({ cacheHit: row.cache_hit_tokens, cacheMiss: row.cache_miss_tokens, output: usage.completion_tokens }, R1));
  assert.ok(row.cost_micros > 0);
  assert.equal(row.charged_micros, 0, "the local operator is never charged");
  assert.equal(row.price_source, "*");
  const log = await service.store.db.selectFrom("request_log").selectAll().where("id", "=", row.id).executeTakeFirst();
  assert.equal(log?.status, 200);
  assert.equal(log?.completion_tokens, usage.completion_tokens);
});

test("a client that leaves mid-stream is metered for the tokens really generated, as stopped", async () => {
  const full = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify({ model: "scripted-long", messages: [{ role: "user", content: "Think a lot, once" }] }),
  });
  const fullTokens = ((await full.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;

  const abort = new AbortController();
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify({ model: "scripted-long", stream: true, messages: [{ role: "user", content: "Think a lot, then I leave" }] }),
    signal: abort.signal,
  });
  const reader = response.body!.getReader();
  let text = "";
  while ((text.match(/reasoning_content":"[^"]/g) ?? []).length < 5) {
    const { value, done } = await reader.read();
    if (done) assert.fail("the stream ended before the client left");
    text += new TextDecoder().decode(value);
  }
  abort.abort();
  const rows = await eventually(ledger, (r) => r.some((x) => x.status === "stopped"), "the stopped request's ledger row");
  const stopped = rows.find((x) => x.status === "stopped")!;
  const generated = stopped.reasoning_tokens + stopped.answer_tokens;
  assert.ok(generated >= 5, `only ${generated} tokens metered`);
  assert.ok(generated < fullTokens, `metered ${generated} of a full ${fullTokens}: the engine was not stopped`);
  assert.ok(stopped.cost_micros > 0);
  const log = await service.store.db.selectFrom("request_log").selectAll().where("id", "=", stopped.id).executeTakeFirst();
  assert.equal(log?.status, 499);
});

test("GET /v1/user/balance answers the local operator in DeepSeek's shape", async () => {
  const response = await fetch(`${service.url}/v1/user/balance`, { headers: service.localAuth });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    is_available: true,
    balance_infos: [{ currency: "USD", total_balance: "0.00", granted_balance: "0.00", topped_up_balance: "0.00" }],
  });
});

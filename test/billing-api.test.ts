/**
 * Billing through the real service, for users with API keys on billed and unbilled plans: the
 * balance checks before generation (402/403/429), settlement to the engine's real usage, the
 * DeepSeek balance endpoint, and 50 concurrent requests against a balance that covers 10.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit, getBalance } from "../src/billing/balances.ts";
import type { LedgerRow } from "../src/billing/ledger.ts";
import { savePlan, type Plan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { costMicros } from "../src/billing/pricing.ts";
import type { LocalEngine } from "../src/engines/local/localEngine.ts";
import { startTestService, type TestService } from "./support/service.ts";

const R1 = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
let service: TestService;

before(async () => {
  service = await startTestService({
    models: ["scripted", "scripted-long"],
    // Limits off the way: this file is about money, and 50 requests come from one key at once.
    config: { limits: { maxConcurrentPerKey: 0, maxConcurrentPerIp: 0, queue: { assumedServiceMs: 50, maxWaitMs: 3_600_000 } } },
  });
  await savePriceSet(service.store.db, { model: "*", base: R1, windows: [] }, null);
});
after(() => service.stop());

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

let users = 0;
/** A fresh account on `plan` (saved first) with an API key. */
async function userOn(plan: Plan): Promise<{ id: string; key: string }> {
  const db = service.store.db;
  await savePlan(db, plan);
  const user = await insertUser(db, { username: `user${++users}`, email: null, passwordHash: "unused", role: "user", status: "active", planId: plan.id });
  const { key } = await createApiKey(db, { userId: user.id, name: "test", models: null, expiresAt: null });
  return { id: user.id, key };
}

async function chat(key: string, body: object) {
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

async function ledgerOf(userId: string): Promise<LedgerRow[]> {
  return service.store.db.selectFrom("usage_ledger").selectAll().where("user_id", "=", userId).orderBy("started_at").execute();
}

/** The exact reservation of a request: its real prompt tokens as misses plus max_tokens as output. */
function reservationOf(model: string, content: string, maxTokens: number): number {
  const engine = service.router.engineFor(model) as LocalEngine;
  const promptTokens = engine.get(model)!.promptTokens({ model, messages: [{ role: "user", content }] }).length;
  return costMicros({ cacheHit: 0, cacheMiss: promptTokens, output: maxTokens }, R1);
}

test("402 before any byte when the balance cannot cover the maximum cost; once credited, the request pays its real cost", async () => {
  const user = await userOn(PLAN);
  const body = { model: "scripted", messages: [{ role: "user", content: "What does it cost?" }], max_tokens: 64 };
  const reservation = reservationOf("scripted", "What does it cost?", 64);

  await addCredit(service.store.db, { userId: user.id, kind: "granted", amountMicros: reservation - 1, source: "admin" });
  const refused = await chat(user.key, body);
  assert.equal(refused.status, 402);
  assert.equal(refused.body.error.code, "insufficient_balance");
  assert.equal(refused.body.error.type, "insufficient_balance");
  assert.equal((await ledgerOf(user.id)).length, 0, "a refused request leaves no ledger row");

  await addCredit(service.store.db, { userId: user.id, kind: "topped_up", amountMicros: 1_000_000, source: "admin" });
  const ok = await chat(user.key, body);
  assert.equal(ok.status, 200);
  const [row] = await ledgerOf(user.id);
  assert.ok(row);
  assert.equal(row.status, "completed");
  assert.equal(row.billed, 1);
  assert.equal(row.reserved_micros, reservation);
  const usage = ok.body.usage;
  const cost = costMicros({ cacheHit: usage.prompt_cache_hit_tokens, cacheMiss: usage.prompt_cache_miss_tokens, output: usage.completion_tokens }, R1);
  assert.equal(row.cost_micros, cost);
  assert.equal(row.charged_micros, cost);
  assert.ok(cost > 0 && cost <= reservation);
  const balance = await getBalance(service.store.db, user.id);
  assert.equal(balance.reservedMicros, 0);
  assert.equal(reservation - 1 + 1_000_000 - (balance.grantedMicros + balance.toppedUpMicros), cost);

  const shown = await fetch(`${service.url}/v1/user/balance`, { headers: { authorization: `Bearer ${user.key}` } });
  assert.equal(shown.status, 200);
  const expected = (micros: number) => (micros / 1_000_000).toFixed(6).replace(/0{1,4}$/, "");
  assert.deepEqual(await shown.json(), {
    is_available: true,
    balance_infos: [
      {
        currency: "USD",
        total_balance: expected(balance.grantedMicros + balance.toppedUpMicros),
        granted_balance: expected(balance.grantedMicros),
        topped_up_balance: expected(balance.toppedUpMicros),
      },
    ],
  });
});

test("a plan without the model answers 403 for it, and serves the models it has", async () => {
  const user = await userOn({ ...PLAN, id: "narrow", name: "Narrow", billed: false, allowedModels: ["scripted"] });
  const refused = await chat(user.key, { model: "scripted-long", messages: [{ role: "user", content: "Hi" }] });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, "model_not_allowed");
  assert.equal(refused.body.error.param, "model");
  assert.equal((await chat(user.key, { model: "scripted", messages: [{ role: "user", content: "Hi" }] })).status, 200);
});

test("a used-up daily quota answers 429 with the reset time", async () => {
  const user = await userOn({ ...PLAN, id: "tiny", name: "Tiny", billed: false, dailyTokenQuota: 20 });
  assert.equal((await chat(user.key, { model: "scripted", messages: [{ role: "user", content: "Use my quota" }] })).status, 200);
  const refused = await chat(user.key, { model: "scripted", messages: [{ role: "user", content: "One more" }] });
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, "quota_exceeded");
  const midnight = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1)).toISOString();
  assert.equal(refused.headers.get("x-quota-reset"), midnight);
  assert.match(refused.body.error.message, new RegExp(`daily token quota \\(20 tokens\\).*${midnight.replace(/\./g, "\\.")}`));
  const retryAfter = Number(refused.headers.get("retry-after"));
  assert.ok(retryAfter > 0 && retryAfter <= 86_400, `retry-after ${retryAfter}`);
});

test("50 concurrent requests against a balance that covers 10: never negative, ledger costs = balance change, one row per completed request", async () => {
  const user = await userOn({ ...PLAN, id: "pro-concurrency" });
  const content = "Count me in";
  const reservation = reservationOf("scripted", content, 48);
  const credit = 10 * reservation;
  await addCredit(service.store.db, { userId: user.id, kind: "topped_up", amountMicros: credit, source: "admin" });

  let lowest = credit;
  const watch = setInterval(async () => {
    const b = await getBalance(service.store.db, user.id);
    lowest = Math.min(lowest, b.toppedUpMicros - b.reservedMicros);
  }, 5);
  const results = await Promise.all(
    Array.from({ length: 50 }, () => chat(user.key, { model: "scripted", messages: [{ role: "user", content }], max_tokens: 48 })),
  ).finally(() => clearInterval(watch));

  const completed = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status !== 200);
  assert.ok(completed.length >= 10, `only ${completed.length} completed`);
  for (const r of refused) assert.equal(r.body.error.code, "insufficient_balance");
  const rows = await ledgerOf(user.id);
  assert.equal(rows.length, completed.length, "exactly one ledger row per completed request, none for refused ones");
  assert.ok(rows.every((r) => r.status === "completed"));
  const charged = rows.reduce((sum, r) => sum + r.charged_micros, 0);
  const after = await getBalance(service.store.db, user.id);
  assert.equal(after.reservedMicros, 0);
  assert.ok(after.toppedUpMicros >= 0);
  assert.equal(credit - after.toppedUpMicros, charged, "the sum of ledger charges is the balance change");
  assert.ok(lowest >= 0, `available balance dipped to ${lowest}`);
  // Each completed request's ledger row matches the usage its response reported.
  const costs = completed.map((r) => costMicros({ cacheHit: r.body.usage.prompt_cache_hit_tokens, cacheMiss: r.body.usage.prompt_cache_miss_tokens, output: r.body.usage.completion_tokens }, R1));
  assert.deepEqual(rows.map((r) => r.charged_micros).sort(), costs.sort());
});

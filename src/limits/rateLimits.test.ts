import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { limitsInForce } from "./attackMode.ts";
import { limitsConfigSchema, type LimitsConfig } from "./config.ts";
import type { Identity } from "./identity.ts";
import { RateLimits, type RateRejection } from "./rateLimits.ts";
import { MemoryBucketStore } from "./tokenBucket.ts";

const anonymous = (ip: string): Identity => ({ kind: "anonymous", userId: null, apiKeyId: null, planId: null, ip });
const viaKey = (userId: string, apiKeyId: string, planId: string | null = null): Identity => ({
  kind: "user",
  userId,
  apiKeyId,
  planId,
  ip: "10.0.0.1",
});
const viaSession = (userId: string, planId: string | null = null): Identity => ({ kind: "user", userId, apiKeyId: null, planId, ip: "10.0.0.1" });

function setup(overrides: Record<string, unknown>) {
  let now = 0;
  const store = new MemoryBucketStore(() => now);
  const rejected: RateRejection[] = [];
  const rates = new RateLimits(store, (reason) => rejected.push(reason));
  const limits: LimitsConfig = limitsConfigSchema.parse(overrides);
  return { rates, limits, rejected, store, advance: (ms: number) => (now += ms) };
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof ServiceError, "expected a refusal");
  return error;
}

test("per IP without an account: requests per minute, then 429 with Retry-After and x-ratelimit headers", async () => {
  const { rates, limits, rejected, store } = setup({ perIp: { requestsPerMinute: 2, tokensPerMinute: 0 } });
  const first = await rates.admitCompletion(anonymous("1.1.1.1"), limits);
  assert.equal(first.headers["x-ratelimit-limit"], "2");
  assert.equal(first.headers["x-ratelimit-remaining"], "1");
  assert.equal(first.headers["x-ratelimit-reset"], "30");
  assert.equal(first.headers["x-ratelimit-limit-requests"], "2");
  await rates.admitCompletion(anonymous("1.1.1.1"), limits);
  const error = await refusal(rates.admitCompletion(anonymous("1.1.1.1"), limits));
  assert.equal(error.kind, "rate_limited");
  assert.equal(error.code, "rate_limit_requests");
  assert.equal(error.retryAfterS, 30);
  assert.equal(error.meta["x-ratelimit-remaining"], "0");
  assert.match(error.message, /your address: 2 requests per minute/);
  assert.deepEqual(rejected, ["rate_limit_requests"]);
  // Another address is not affected.
  await rates.admitCompletion(anonymous("2.2.2.2"), limits);
  await store.close();
});

test("tokens per minute are charged after the fact; a bucket in debt refuses the next request", async () => {
  const { rates, limits, advance, store } = setup({ perIp: { requestsPerMinute: 0, tokensPerMinute: 600 } });
  const who = anonymous("1.1.1.1");
  const fresh = await rates.admitCompletion(who, limits);
  assert.equal(fresh.headers["x-ratelimit-remaining-tokens"], "600");
  await rates.chargeTokens(who, limits, 900);
  const error = await refusal(rates.admitCompletion(who, limits));
  assert.equal(error.code, "rate_limit_tokens");
  assert.equal(error.retryAfterS, 31); // 300 in debt, 10 per second, plus the first token
  advance(31_000);
  await rates.admitCompletion(who, limits);
  await store.close();
});

test("an API key has its own bucket, and the account's bucket spans all its keys and sessions", async () => {
  const { rates, limits, store } = setup({
    perKey: { requestsPerMinute: 2, tokensPerMinute: 0 },
    perUser: { requestsPerMinute: 3, tokensPerMinute: 0 },
  });
  await rates.admitCompletion(viaKey("u1", "k1"), limits);
  await rates.admitCompletion(viaKey("u1", "k1"), limits);
  const keyError = await refusal(rates.admitCompletion(viaKey("u1", "k1"), limits));
  assert.match(keyError.message, /this API key: 2 requests per minute/);
  // Key k1's refusal still counted against the account (3 taken), so the account is now empty too.
  const userError = await refusal(rates.admitCompletion(viaKey("u1", "k2"), limits));
  assert.match(userError.message, /your account: 3 requests per minute/);
  const sessionError = await refusal(rates.admitCompletion(viaSession("u1"), limits));
  assert.equal(sessionError.code, "rate_limit_requests");
  // Another account is not affected.
  await rates.admitCompletion(viaKey("u2", "k3"), limits);
  await store.close();
});

test("a plan sets its users' own rates and may cap all its users together", async () => {
  const { rates, limits, store } = setup({
    perUser: { requestsPerMinute: 100, tokensPerMinute: 0 },
    tiers: {
      free: { requestsPerMinute: 1, totalRequestsPerMinute: 3 },
      pro: { requestsPerMinute: 50 },
    },
  });
  await rates.admitCompletion(viaSession("f1", "free"), limits);
  assert.match((await refusal(rates.admitCompletion(viaSession("f1", "free"), limits))).message, /your account: 1 requests per minute/);
  await rates.admitCompletion(viaSession("f2", "free"), limits);
  // f1's refused attempt took one from the plan too: f3 finds the plan's shared bucket empty.
  assert.match((await refusal(rates.admitCompletion(viaSession("f3", "free"), limits))).message, /the free plan: 3 requests per minute/);
  for (let i = 0; i < 10; i++) await rates.admitCompletion(viaSession("p1", "pro"), limits);
  // No plan or an unknown plan: the per-user default.
  for (let i = 0; i < 10; i++) await rates.admitCompletion(viaSession("n1", "gold"), limits);
  await store.close();
});

test("per-IP buckets for sign-in attempts and for any request", async () => {
  const { rates, limits, rejected, store } = setup({ authPerIpPerMinute: 2, httpPerIpPerMinute: 0 });
  await rates.consumeIp("auth-ip", "9.9.9.9", limits);
  await rates.consumeIp("auth-ip", "9.9.9.9", limits);
  const error = await refusal(rates.consumeIp("auth-ip", "9.9.9.9", limits));
  assert.equal(error.kind, "rate_limited");
  assert.equal(error.code, "rate_limit_auth");
  assert.match(error.message, /sign-in attempts/);
  assert.ok(Number(error.retryAfterS) >= 1);
  // 0 switches a bucket off.
  for (let i = 0; i < 50; i++) await rates.consumeIp("http-ip", "9.9.9.9", limits);
  assert.deepEqual(rejected, ["rate_limit_auth"]);
  await store.close();
});

test("attack mode tightens every rate, queue bound and cap by its factors, never to 0", () => {
  const config = limitsConfigSchema.parse({
    perIp: { requestsPerMinute: 100, tokensPerMinute: 0 },
    authPerIpPerMinute: 2,
    tiers: { free: { requestsPerMinute: 8 } },
    queue: { maxLength: 100, maxWaitMs: 60_000 },
    maxConcurrentPerIp: 8,
  });
  const normal = limitsInForce(config, false);
  assert.equal(normal, config);
  const tight = limitsInForce(config, true);
  assert.equal(tight.perIp.requestsPerMinute, 25);
  assert.equal(tight.perIp.tokensPerMinute, 0, "a limit that is off stays off");
  assert.equal(tight.authPerIpPerMinute, 1, "never below 1");
  assert.equal(tight.tiers.free!.requestsPerMinute, 2);
  assert.equal(tight.queue.maxLength, 50);
  assert.equal(tight.queue.maxWaitMs, 30_000);
  assert.equal(tight.maxConcurrentPerIp, 2);
});

test("the limits config names a bad key", () => {
  assert.throws(() => limitsConfigSchema.parse({ perIp: { requestsPerMinutes: 5 } }), /requestsPerMinutes/);
  assert.throws(() => limitsConfigSchema.parse({ queue: { maxWaitMs: -1 } }), /maxWaitMs|>=0/);
});

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { Redis } from "ioredis";
import { redisUrlOrSkip } from "../../test/support/services.ts";
import { RedisBucketStore } from "./redisBucketStore.ts";

const rule = { capacity: 3, windowMs: 60_000 };

async function connect(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  await redis.connect();
  return redis;
}

test("two stores on two connections draw from one balance", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`;
  const [one, two] = [await connect(url), await connect(url)];
  const a = new RedisBucketStore(one, { prefix });
  const b = new RedisBucketStore(two, { prefix });
  try {
    assert.equal((await a.take("k", 1, rule)).allowed, true);
    assert.equal((await a.take("k", 1, rule)).allowed, true);
    const third = await b.take("k", 1, rule);
    assert.equal(third.allowed, true);
    assert.equal(third.remaining, 0);
    const refused = await b.take("k", 1, rule);
    assert.equal(refused.allowed, false);
    assert.ok(refused.retryAfterMs > 19_000 && refused.retryAfterMs <= 20_000, `retry after ${refused.retryAfterMs} ms`);
    // The key expires once the bucket would be full again, so idle clients leave nothing behind.
    const ttl = await one.pttl(`${prefix}k`);
    assert.ok(ttl > 0 && ttl <= 61_000, `expires in ${ttl} ms`);

    await a.debit("t", 10, rule);
    assert.equal((await b.take("t", 0, rule)).allowed, false, "a debt made through one store is seen by the other");
  } finally {
    await one.del(`${prefix}k`, `${prefix}t`);
    await Promise.all([a.close(), b.close()]);
    one.disconnect();
    two.disconnect();
  }
});

test("while Redis is unreachable the store falls back to per-process balances instead of failing", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const redis = await connect(url);
  const store = new RedisBucketStore(redis, { prefix: `sputnik-test:${randomBytes(6).toString("hex")}:` });
  redis.disconnect();
  try {
    for (let i = 0; i < 3; i++) assert.equal((await store.take("k", 1, rule)).allowed, true);
    assert.equal((await store.take("k", 1, rule)).allowed, false, "still limited, per process");
  } finally {
    await store.close();
  }
});

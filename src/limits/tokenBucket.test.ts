import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryBucketStore, applyBucket, outcomeOf } from "./tokenBucket.ts";

const perMinute = (capacity: number) => ({ capacity, windowMs: 60_000 });

test("a bucket lets its capacity through, then refuses with the time until one token is back", async () => {
  let now = 1_000_000;
  const store = new MemoryBucketStore(() => now);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await store.take("k", 1, perMinute(3))).allowed, true);
    const refused = await store.take("k", 1, perMinute(3));
    assert.equal(refused.allowed, false);
    assert.equal(refused.remaining, 0);
    assert.equal(refused.limit, 3);
    assert.equal(refused.retryAfterMs, 20_000); // 3 per minute: one token every 20 s
    assert.equal(refused.resetMs, 60_000);
    now += 20_000;
    assert.equal((await store.take("k", 1, perMinute(3))).allowed, true);
    assert.equal((await store.take("k", 1, perMinute(3))).allowed, false);
  } finally {
    await store.close();
  }
});

test("buckets refill continuously and never above capacity", async () => {
  let now = 0;
  const store = new MemoryBucketStore(() => now);
  try {
    await store.take("k", 60, perMinute(60));
    now += 30_000;
    const half = await store.take("k", 0, perMinute(60));
    assert.equal(half.remaining, 30);
    now += 10 * 60_000;
    assert.equal((await store.take("k", 0, perMinute(60))).remaining, 60);
  } finally {
    await store.close();
  }
});

test("keys are independent", async () => {
  const store = new MemoryBucketStore(() => 0);
  try {
    assert.equal((await store.take("a", 1, perMinute(1))).allowed, true);
    assert.equal((await store.take("a", 1, perMinute(1))).allowed, false);
    assert.equal((await store.take("b", 1, perMinute(1))).allowed, true);
  } finally {
    await store.close();
  }
});

test("a debit can put a bucket into debt (at most one bucket deep); cost 0 asks whether it is out of debt", async () => {
  let now = 0;
  const store = new MemoryBucketStore(() => now);
  const rule = perMinute(1000);
  try {
    const debt = await store.debit("t", 1500, rule);
    assert.equal(debt.remaining, 0);
    assert.equal((await store.take("t", 0, rule)).allowed, false);
    const deepest = await store.debit("t", 10_000, rule);
    assert.equal(deepest.resetMs, 120_000); // -1000 → 1000 takes two windows
    now += 60_000; // back to 0: still not positive
    assert.equal((await store.take("t", 0, rule)).allowed, false);
    now += 60; // one token
    assert.equal((await store.take("t", 0, rule)).allowed, true);
  } finally {
    await store.close();
  }
});

test("full buckets are swept away, keeping memory bounded", async () => {
  let now = 0;
  const store = new MemoryBucketStore(() => now);
  try {
    for (let i = 0; i < 100; i++) await store.take(`ip-${i}`, 1, perMinute(10));
    assert.equal(store.size, 100);
    now += 5_000;
    store.sweep();
    assert.equal(store.size, 100);
    now += 1_000;
    store.sweep();
    assert.equal(store.size, 0);
  } finally {
    await store.close();
  }
});

test("a cost above capacity counts as one full bucket, so it can succeed", () => {
  const full = applyBucket(undefined, 0, 50, perMinute(10), "take");
  assert.equal(full.allowed, true);
  assert.equal(full.state.tokens, 0);
  const empty = applyBucket({ tokens: 0, at: 0 }, 0, 50, perMinute(10), "take");
  assert.equal(empty.allowed, false);
  assert.equal(outcomeOf(empty.state.tokens, false, 50, perMinute(10)).retryAfterMs, 60_000);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase } from "../../test/support/databases.ts";
import { delayFor, Throttle, type ThrottleRule } from "./throttle.ts";

const rule: ThrottleRule = { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000, resetAfterMs: 60_000 };

test("delays double after the free failures, up to the cap", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => delayFor(rule, n)),
    [0, 0, 0, 1000, 2000, 4000, 8000, 8000, 8000],
  );
});

forEachDatabase("throttle: free failures, then growing blocks per key; other keys unaffected", async (store) => {
  const throttle = new Throttle(store.db, rule, "test");
  const t0 = 1_000_000;
  for (let i = 0; i < 3; i++) assert.equal(await throttle.recordFailure("alice", t0 + i), 0);
  assert.equal(await throttle.waitMs("alice", t0 + 3), 0);
  assert.equal(await throttle.recordFailure("alice", t0 + 10), 1000);
  assert.equal(await throttle.waitMs("alice", t0 + 10), 1000);
  assert.equal(await throttle.waitMs("alice", t0 + 610), 400);
  assert.equal(await throttle.waitMs("bob", t0 + 610), 0);
  // After the block, the next failure blocks twice as long.
  assert.equal(await throttle.recordFailure("alice", t0 + 1100), 2000);
  assert.equal(await throttle.waitMs("alice", t0 + 1100), 2000);
  await throttle.reset("alice");
  assert.equal(await throttle.waitMs("alice", t0 + 1100), 0);
});

forEachDatabase("throttle: a quiet spell forgives, and the key is not stored in clear", async (store) => {
  const throttle = new Throttle(store.db, rule, "test");
  for (let i = 0; i < 4; i++) await throttle.recordFailure("my password typed as a name", 0);
  assert.ok((await throttle.waitMs("my password typed as a name", 0)) > 0);
  assert.equal(await throttle.recordFailure("my password typed as a name", rule.resetAfterMs + 10_000), 0, "counter restarted");
  const keys = (await store.db.selectFrom("auth_throttle").select("key").execute()).map((r) => r.key);
  assert.equal(keys.length, 1);
  assert.doesNotMatch(keys[0]!, /password/);
});

forEachDatabase("throttle: concurrent failures are all counted", async (store) => {
  const throttle = new Throttle(store.db, { ...rule, freeFailures: 100 }, "test");
  await Promise.all(Array.from({ length: 20 }, () => throttle.recordFailure("k", 5)));
  const row = await store.db.selectFrom("auth_throttle").select("failures").executeTakeFirstOrThrow();
  assert.equal(row.failures, 20);
});

forEachDatabase("throttle: prune drops only counters that can no longer block", async (store) => {
  const throttle = new Throttle(store.db, rule, "test");
  await throttle.recordFailure("old", 0);
  for (let i = 0; i < 5; i++) await throttle.recordFailure("blocked", 100_000);
  await Throttle.prune(store.db, 50_000, 100_001);
  assert.equal(await store.db.selectFrom("auth_throttle").select("key").execute().then((r) => r.length), 1);
  assert.ok((await throttle.waitMs("blocked", 100_001)) > 0);
});

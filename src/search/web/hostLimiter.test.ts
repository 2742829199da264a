import assert from "node:assert/strict";
import { test } from "node:test";
import { HostLimiter } from "./hostLimiter.ts";

test("at most N slots per host, handed over in order; other hosts are not held up", async () => {
  const limiter = new HostLimiter(2);
  const first = await limiter.acquire("a.example");
  const second = await limiter.acquire("a.example");
  const order: string[] = [];
  const third = limiter.acquire("a.example").then((release) => (order.push("third"), release));
  const fourth = limiter.acquire("a.example").then((release) => (order.push("fourth"), release));
  const other = await limiter.acquire("b.example"); // not queued behind a.example
  assert.equal(limiter.active("a.example"), 2);
  assert.deepEqual(order, []);

  first();
  first(); // a second call of the same release is a no-op, not a second slot
  const releaseThird = await third;
  assert.deepEqual(order, ["third"]);
  assert.equal(limiter.active("a.example"), 2);

  second();
  const releaseFourth = await fourth;
  assert.deepEqual(order, ["third", "fourth"]);
  releaseThird();
  releaseFourth();
  other();
  assert.equal(limiter.active("a.example"), 0);
  assert.equal(limiter.active("b.example"), 0);
});

test("a waiter whose signal aborts leaves the queue without taking a slot", async () => {
  const limiter = new HostLimiter(1);
  const held = await limiter.acquire("h");
  const controller = new AbortController();
  const waiting = limiter.acquire("h", controller.signal);
  controller.abort(new Error("gave up"));
  await assert.rejects(waiting, /gave up/);
  held();
  assert.equal(limiter.active("h"), 0);
  const again = await limiter.acquire("h"); // the slot is free, not lost to the aborted waiter
  assert.equal(limiter.active("h"), 1);
  again();
});

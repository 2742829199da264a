import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { AdmissionQueue, type QueueRejection, type QueueSettings, type QueueUpdate, type Slot } from "./admissionQueue.ts";

function queue(overrides: Partial<QueueSettings> = {}, rejected: QueueRejection[] = []): AdmissionQueue {
  const settings: QueueSettings = {
    capacity: 1,
    maxLength: 100,
    maxPerUser: 100,
    maxWaitMs: 600_000,
    assumedServiceMs: 1000,
    updateEveryMs: 60_000,
    ...overrides,
  };
  return new AdmissionQueue("m", () => settings, { rejected: (_model, reason) => rejected.push(reason) });
}

function refusal(fn: () => unknown): ServiceError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ServiceError, `expected a ServiceError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a refusal");
}

const settled = (slot: Slot) =>
  Promise.race([slot.ready.then(() => "ready", () => "rejected"), new Promise((r) => setImmediate(() => r("pending")))]);

test("runs up to capacity at once; the rest wait and run as places free", async () => {
  const q = queue({ capacity: 2 });
  const a = q.enter({ flow: "u1", weight: 1 });
  const b = q.enter({ flow: "u2", weight: 1 });
  const c = q.enter({ flow: "u3", weight: 1 });
  assert.equal(a.queued, false);
  assert.equal(b.queued, false);
  assert.equal(c.queued, true);
  assert.equal(await settled(c), "pending");
  assert.equal(q.runningCount, 2);
  a.release();
  assert.equal(await settled(c), "ready");
  assert.equal(q.runningCount, 2);
  a.release(); // idempotent
  assert.equal(q.runningCount, 2);
  b.release();
  c.release();
  assert.equal(q.runningCount, 0);
});

test("a full queue answers 503 with Retry-After at once, in enter()", () => {
  const reasons: QueueRejection[] = [];
  const q = queue({ maxLength: 2 }, reasons);
  q.enter({ flow: "a", weight: 1 });
  q.enter({ flow: "b", weight: 1 });
  q.enter({ flow: "c", weight: 1 });
  const error = refusal(() => q.enter({ flow: "d", weight: 1 }));
  assert.equal(error.kind, "unavailable");
  assert.equal(error.code, "queue_full");
  assert.match(String(error.retryAfterS), /^[1-9]\d*$/);
  // Retry-After reflects the queued work (two turns waiting), not one turn.
  assert.equal(error.retryAfterS, Math.ceil((2 * q.turnEstimateMs) / 1000));
  assert.deepEqual(reasons, ["queue_full"]);
  assert.equal(q.queuedCount, 2);
});

test("one user cannot hold more than maxPerUser waiting places (429), others still can", () => {
  const q = queue({ maxPerUser: 2 });
  q.enter({ flow: "heavy", weight: 1 });
  q.enter({ flow: "heavy", weight: 1 });
  q.enter({ flow: "heavy", weight: 1 });
  const error = refusal(() => q.enter({ flow: "heavy", weight: 1 }));
  assert.equal(error.kind, "rate_limited");
  assert.equal(error.code, "queue_user_full");
  assert.ok(Number(error.retryAfterS) >= 1);
  assert.equal(q.enter({ flow: "light", weight: 1 }).queued, true);
});

test("a request whose estimated wait is over the limit gets 503 at once", () => {
  const q = queue({ assumedServiceMs: 1000, maxWaitMs: 2500 });
  q.enter({ flow: "a", weight: 1 }); // runs
  q.enter({ flow: "a", weight: 1 }); // about 1 s
  q.enter({ flow: "a", weight: 1 }); // about 2 s
  const error = refusal(() => q.enter({ flow: "a", weight: 1 })); // about 3 s
  assert.equal(error.kind, "unavailable");
  assert.equal(error.code, "queue_wait_too_long");
  assert.equal(error.retryAfterS, 1);
  // Another user would go after one turn (about 1 s): still admitted.
  assert.equal(q.enter({ flow: "b", weight: 1 }).queued, true);
});

test("waiting requests know their place in line and hear it again while they wait", async () => {
  const q = queue({ capacity: 1, assumedServiceMs: 2000, updateEveryMs: 10 });
  const running = q.enter({ flow: "a", weight: 1 });
  assert.equal(running.position(), null);
  const updates: QueueUpdate[] = [];
  const first = q.enter({ flow: "b", weight: 1 });
  const last = q.enter({ flow: "c", weight: 1, onUpdate: (u) => updates.push(u) });
  assert.deepEqual(first.position(), { position: 1, queueLength: 2, estimatedWaitS: 2 });
  assert.deepEqual(last.position(), { position: 2, queueLength: 2, estimatedWaitS: 4 });
  const hold = setTimeout(() => undefined, 10_000);
  while (updates.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(updates[0], { position: 2, queueLength: 2, estimatedWaitS: 4 });
  running.release(false);
  const heard = updates.length;
  while (updates.length === heard) await new Promise((resolve) => setTimeout(resolve, 5));
  clearTimeout(hold);
  assert.equal(updates.at(-1)!.position, 1);
  assert.equal(first.position(), null);
  last.release();
  q.close();
});

test("an aborted waiting request leaves at once and the one behind moves up", async () => {
  const q = queue();
  const running = q.enter({ flow: "a", weight: 1 });
  const abort = new AbortController();
  const leaving = q.enter({ flow: "b", weight: 1, signal: abort.signal });
  const staying = q.enter({ flow: "c", weight: 1 });
  abort.abort(new Error("client left"));
  assert.equal(q.queuedCount, 1);
  await assert.rejects(leaving.ready, /client left/);
  running.release();
  assert.equal(await settled(staying), "ready");
  leaving.release(); // no effect: it never ran
  assert.equal(q.runningCount, 1);
});

test("releasing a waiting request takes it out of the line", async () => {
  const q = queue();
  q.enter({ flow: "a", weight: 1 });
  const waiting = q.enter({ flow: "b", weight: 1 });
  waiting.release();
  assert.equal(q.queuedCount, 0);
  assert.equal(await settled(waiting), "rejected");
});

test("a request still waiting after twice maxWaitMs (its estimate was wrong) is refused with 503 queue_timeout", async () => {
  const reasons: QueueRejection[] = [];
  const q = queue({ maxWaitMs: 500, assumedServiceMs: 1 }, reasons);
  q.enter({ flow: "a", weight: 1 });
  const waiting = q.enter({ flow: "b", weight: 1 });
  // The queue's timers do not keep a process alive (a server's sockets do): this test's must.
  const hold = setTimeout(() => undefined, 10_000);
  const error = await waiting.ready.then(() => null, (e: unknown) => e);
  clearTimeout(hold);
  assert.ok(error instanceof ServiceError);
  assert.equal(error.kind, "unavailable");
  assert.equal(error.code, "queue_timeout");
  assert.match(error.message, /waited 1 s/, "twice the 500 ms limit");
  assert.ok(Number(error.retryAfterS) >= 1);
  assert.deepEqual(reasons, ["queue_timeout"]);
  assert.equal(q.queuedCount, 0);
});

test("fairness: with one place, a light user's request runs right after the current one, ahead of 50 queued heavy ones", async () => {
  const q = queue({ capacity: 1 });
  const order: string[] = [];
  let running = q.enter({ flow: "heavy", weight: 1 });
  const slots: Array<{ name: string; slot: Slot }> = [];
  for (let i = 0; i < 50; i++) slots.push({ name: `heavy${i}`, slot: q.enter({ flow: "heavy", weight: 1 }) });
  slots.push({ name: "light", slot: q.enter({ flow: "light", weight: 1 }) });
  for (const { name, slot } of slots) slot.ready.then(() => order.push(name), () => undefined);
  for (let turn = 0; turn < 3; turn++) {
    running.release();
    await new Promise((resolve) => setImmediate(resolve));
    const next = slots.find((s) => s.name === order.at(-1))!;
    running = next.slot;
  }
  assert.deepEqual(order, ["light", "heavy0", "heavy1"]);
  q.close();
});

test("close() refuses every waiting request with 503 and admits nothing more", async () => {
  const q = queue();
  q.enter({ flow: "a", weight: 1 });
  const waiting = q.enter({ flow: "b", weight: 1 });
  q.close();
  const error = await waiting.ready.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof ServiceError);
  assert.equal(error.code, "shutting_down");
  assert.equal(refusal(() => q.enter({ flow: "c", weight: 1 })).kind, "unavailable");
});

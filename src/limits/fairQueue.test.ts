import assert from "node:assert/strict";
import { test } from "node:test";
import { FairQueue } from "./fairQueue.ts";

function drain<T>(queue: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let e = queue.shift(); e; e = queue.shift()) out.push(e.value);
  return out;
}

test("one flow alone is served in arrival order", () => {
  const q = new FairQueue<number>();
  for (let i = 0; i < 5; i++) q.push("a", 1, i);
  assert.deepEqual(drain(q), [0, 1, 2, 3, 4]);
});

test("a newcomer goes right after the request being served, however many a heavy user has queued", () => {
  const q = new FairQueue<string>();
  q.admitDirectly("heavy", 1); // heavy's first request runs
  for (let i = 0; i < 50; i++) q.push("heavy", 1, `h${i}`);
  q.push("light", 1, "light");
  assert.equal(q.shift()!.value, "light");

  // Also when the light request arrives in the middle of the heavy backlog.
  const q2 = new FairQueue<string>();
  for (let i = 0; i < 50; i++) q2.push("heavy", 1, `h${i}`);
  for (let i = 0; i < 20; i++) q2.shift();
  assert.equal(q2.aheadOfNew("light"), 0);
  q2.push("light", 1, "light");
  assert.equal(q2.shift()!.value, "light");
});

test("flows with the same weight alternate; weight 2 gets two turns per turn of weight 1", () => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 4; i++) q.push("a", 1, "a");
  for (let i = 0; i < 4; i++) q.push("b", 1, "b");
  assert.deepEqual(drain(q), ["a", "b", "a", "b", "a", "b", "a", "b"]);

  const w = new FairQueue<string>();
  for (let i = 0; i < 6; i++) w.push("gold", 2, "g");
  for (let i = 0; i < 3; i++) w.push("free", 1, "f");
  assert.deepEqual(drain(w), ["g", "f", "g", "g", "f", "g", "g", "f", "g"]);
});

test("ordered() and aheadOfNew() agree with shift()", () => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 3; i++) q.push("a", 1, `a${i}`);
  q.push("b", 1, "b0");
  assert.equal(q.aheadOfNew("c"), 2); // a0 and b0 share the newcomer's tag and came first
  const order = q.ordered().map((e) => e.value);
  assert.deepEqual(order, ["a0", "b0", "a1", "a2"]);
  assert.deepEqual(drain(q), order);
});

test("a removed request frees its turn and is not charged to its flow", () => {
  const q = new FairQueue<string>();
  const a0 = q.push("a", 1, "a0");
  q.push("b", 1, "b0");
  q.push("b", 1, "b1");
  assert.equal(q.remove(a0), true);
  assert.equal(q.remove(a0), false);
  assert.equal(q.queuedFor("a"), 0);
  q.push("a", 1, "a-again"); // takes the removed tag back: still ahead of b's second request
  assert.deepEqual(drain(q), ["b0", "a-again", "b1"]);
});

test("per-flow counts follow pushes, shifts and removals", () => {
  const q = new FairQueue<number>();
  q.push("a", 1, 1);
  const e = q.push("a", 1, 2);
  q.push("b", 1, 3);
  assert.equal(q.queuedFor("a"), 2);
  q.remove(e);
  q.shift();
  assert.equal(q.queuedFor("a"), 0);
  assert.equal(q.queuedFor("b"), 1);
  assert.equal(q.length, 1);
});

test("the expected turns before a new request count other waiting flows' future requests that will overtake it", () => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 10; i++) q.push("heavy", 1, "h");
  q.push("light", 1, "l");
  assert.equal(q.aheadOfNew("heavy"), 11);
  // light's next requests would be tagged 1, 2, …, 9: all below heavy's next tag (10).
  assert.equal(q.turnsBeforeNew("heavy"), 11 + 9);
  // A newcomer from a third flow is tagged like light's first request: only the two tagged 0 go first.
  assert.equal(q.turnsBeforeNew("third"), 2);
  const waiting = q.ordered().at(-1)!; // heavy's last (tag 9)
  assert.equal(q.turnsBefore(waiting), 10 + 8);
});

test("under steady overload those expectations hold: admitted requests seldom wait longer than told", () => {
  // 50 flows, two arrivals per turn (twice the capacity), refused when more than 66 turns away.
  const q = new FairQueue<{ expected: number; at: number }>();
  const limit = 66;
  let admitted = 0;
  let longer = 0;
  for (let turn = 0, id = 0; turn < 5000; turn++) {
    for (let a = 0; a < 2; a++, id++) {
      const flow = `f${id % 50}`;
      const expected = q.turnsBeforeNew(flow) + 1;
      if (expected > limit) continue;
      admitted++;
      q.push(flow, 1, { expected, at: turn });
    }
    const next = q.shift()!;
    if (turn + 1 - next.value.at > next.value.expected * 1.1) longer++;
  }
  assert.ok(admitted > 4000, `${admitted} admitted`);
  assert.ok(longer / admitted < 0.01, `${longer} of ${admitted} waited over 110% of what they were told`);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { SequencePool, type PooledSequence } from "./sequencePool.ts";

/** Only `contextTokens` is read by placement. */
const fakeSequences = (n: number) => Array.from({ length: n }, () => ({ contextTokens: [] as Token[] }) as unknown as LlamaContextSequence);
const prompt = (seed: number) => Array.from({ length: 40 }, (_, i) => (seed * 1000 + i) as Token);
const tick = () => new Promise((resolve) => setTimeout(resolve, 2));

/** Uses sequences in this order, so the first listed is the least recently used afterwards. */
async function useInOrder(pool: SequencePool, order: number[]): Promise<void> {
  const entries = pool.sequences();
  for (const index of order) {
    const entry = entries[index]!;
    entry.busy = true;
    pool.release(entry);
    await tick();
  }
}

/** Follow-up work (an answer's re-read) on `entry` that runs until a request wants the sequence. */
function settle(pool: SequencePool, entry: PooledSequence): void {
  entry.busy = true;
  void pool.releaseAfter(entry, [], (signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true })));
}

test("a new stream joins the live ones, not a sequence next to a background re-read", async () => {
  // The case measured in the bench: streams live on 1, 2 and 3, sequence 6 re-reading an answer,
  // 7 the least recently used. Placed next to 6, the fourth stream made llama.cpp run two forward
  // passes per step (sequences 1-3 and 7 are not consecutive).
  const pool = new SequencePool(fakeSequences(8));
  await useInOrder(pool, [7, 0, 4, 5, 1, 2, 3, 6]);
  const live = [1, 2, 3].map((i) => pool.sequences()[i]!);
  for (const entry of live) entry.busy = true;
  settle(pool, pool.sequences()[6]!);
  const placed = await pool.acquire(prompt(1));
  assert.ok([0, 4].includes(placed.index), `placed on ${placed.index}, not next to the live run 1-3`);
});

test("streams arriving together take consecutive sequences, whatever is re-reading beside them", async () => {
  const pool = new SequencePool(fakeSequences(8));
  await useInOrder(pool, [3, 0, 5, 1, 6, 2, 7, 4]);
  // A sequence still re-reading an answer does not pull the new streams towards it (the old rule
  // counted it as busy and placed them on 6, 7, 4 and 3).
  settle(pool, pool.sequences()[5]!);
  const placed: number[] = [];
  for (let i = 0; i < 4; i++) placed.push((await pool.acquire(prompt(10 + i))).index);
  const sorted = [...placed].sort((a, b) => a - b);
  assert.deepEqual(
    sorted,
    sorted.map((_, i) => sorted[0]! + i),
    `placed on ${placed.join(", ")}`,
  );
  assert.equal(placed[0], 3, "the first goes to the least recently used idle sequence");
});

test("a settling sequence a request waits for counts as live for the next placement", async () => {
  const pool = new SequencePool(fakeSequences(8));
  await useInOrder(pool, [0, 1, 2, 3, 4, 5, 6, 7]);
  // Sequence 5 re-reads a conversation; its next turn arrives and waits for the re-read to stop.
  const history = prompt(20);
  const five = pool.sequences()[5]!;
  five.busy = true;
  void pool.releaseAfter(five, history, () => new Promise<void>(() => undefined));
  const waiting = pool.acquire([...history, 1, 2] as Token[]);
  assert.equal(pool.waitingCount, 1);
  // A new conversation goes next to 5 (where the stream is about to run), not to the LRU 0.
  const placed = await pool.acquire(prompt(21));
  assert.ok([4, 6].includes(placed.index), `placed on ${placed.index}`);
  void waiting;
});

test("a re-read gives way when it walls the idle sequences off from the live streams", async () => {
  const pool = new SequencePool(fakeSequences(4));
  await useInOrder(pool, [0, 1, 2, 3]);
  const live = pool.sequences()[1]!;
  live.busy = true;
  // 2 re-reads next to the live stream, 3 is idle but touches nothing live.
  settle(pool, pool.sequences()[2]!);
  const first = await pool.acquire(prompt(40));
  assert.equal(first.index, 0, "idle and next to the live stream");
  const second = await pool.acquire(prompt(41));
  assert.equal(second.index, 2, "3 would start a second run (0-1 and 3): the re-read on 2 stops instead");
  const third = await pool.acquire(prompt(42));
  assert.equal(third.index, 3, "the last idle one, now next to the live run");
});

test("with no live stream, a re-read is left alone while an idle sequence is free", async () => {
  const pool = new SequencePool(fakeSequences(3));
  await useInOrder(pool, [0, 1, 2]);
  settle(pool, pool.sequences()[1]!);
  const first = await pool.acquire(prompt(43));
  assert.equal(first.index, 0, "idle, and nothing is live to join");
  first.busy = true;
  const second = await pool.acquire(prompt(44));
  assert.equal(second.index, 1, "now 2 would be walled off from the stream on 0 by the re-read on 1");
});

test("four streams after three 1-stream answers still re-reading on 0, 2 and 4 take one run", async () => {
  // The bench's first 4-stream run after its 1-stream runs: the old rule put the first stream on
  // the least recently used 1, walled in by the re-reads on 0 and 2, and the four streams ran in
  // two or three runs (two or three forward passes per step; measured 0.63× of the later runs).
  const pool = new SequencePool(fakeSequences(8));
  await useInOrder(pool, [1, 3, 7, 6, 5, 0, 2, 4]);
  for (const i of [0, 2, 4]) settle(pool, pool.sequences()[i]!);
  const placed: number[] = [];
  for (let i = 0; i < 4; i++) placed.push((await pool.acquire(prompt(50 + i))).index);
  const sorted = [...placed].sort((a, b) => a - b);
  assert.deepEqual(sorted, [4, 5, 6, 7], `placed on ${placed.join(", ")}`);
  assert.ok(placed[0]! >= 5, "the first goes into the longest free run (5-7), not to the least recently used 1");
});

test("work riding next to a live stream is left alone while an idle sequence is free, taken when none is", async () => {
  const pool = new SequencePool(fakeSequences(3));
  await useInOrder(pool, [0, 1, 2]);
  const host = pool.sequences()[0]!;
  host.busy = true;
  let stopped = false;
  const borrowed = pool.borrowNear(
    host,
    () => true,
    (_entry, signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => ((stopped = true), resolve()), { once: true })),
  );
  assert.ok(borrowed, "the neighbour 1 was idle");
  const first = await pool.acquire(prompt(30));
  assert.equal(first.index, 2, "the idle sequence, not the rider");
  assert.equal(stopped, false);
  const second = await pool.acquire(prompt(31));
  assert.equal(second.index, 1, "nothing else is free: the rider's work stops and its sequence is handed over");
  assert.equal(stopped, true);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { BatchItem, LlamaContext, PrioritizedBatchItem, Token } from "node-llama-cpp";
import { BatchScheduler, inSequenceOrder } from "./batching.ts";

const item = (ids: number[]): BatchItem => ({ tokens: ids as Token[], logits: ids.map(() => true), evaluationPriority: 5 });

test("a batch's items are put in ascending sequence order, so llama.cpp can decode them together", () => {
  const [a, b, c] = [item([1]), item([2, 3]), item([4])];
  const plan: PrioritizedBatchItem[] = [
    { item: a, processAmount: 1 },
    { item: b, processAmount: 2 },
    { item: c, processAmount: 1 },
  ];
  // Ready in the order 3, 1, 2: llama.cpp's sequential split would make [3] and [1, 2] of it.
  const queue = [
    { sequenceId: 3, tokens: a.tokens },
    { sequenceId: 1, tokens: b.tokens },
    { sequenceId: 2, tokens: c.tokens },
  ];
  const ordered = inSequenceOrder(plan, queue);
  assert.deepEqual(ordered.map((entry) => entry.item), [b, c, a]);
  assert.deepEqual(ordered.map((entry) => entry.processAmount), [2, 1, 1], "each item keeps its share");
});

test("items whose sequence is unknown keep their order, after the known ones", () => {
  const [a, b, c] = [item([1]), item([2]), item([3])];
  const plan = [a, b, c].map((i) => ({ item: i, processAmount: 1 }));
  const ordered = inSequenceOrder(plan, [{ sequenceId: 0, tokens: c.tokens }]);
  assert.deepEqual(ordered.map((entry) => entry.item), [c, a, b]);
});

/** A context whose decode entry point records which sequences' submissions reached llama.cpp. */
function recordingContext() {
  const decoded: number[] = [];
  const context = {
    _queuedDecodes: [],
    _decodeTokens: async (request: { sequenceId: number; tokens: readonly number[] }) => {
      decoded.push(request.sequenceId);
    },
  };
  const submit = (sequenceId: number) => (context as unknown as { _decodeTokens: (r: object, m: unknown) => Promise<unknown> })._decodeTokens({ sequenceId, tokens: [1, 2] }, null);
  return { context: context as unknown as LlamaContext, decoded, submit };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("a re-read's chunk waits while a stream is live, unless a request already waits for its sequence", async () => {
  const { context, decoded, submit } = recordingContext();
  const scheduler = new BatchScheduler(512);
  scheduler.attach(context);
  const leaveStream = scheduler.enter();

  // Sequence 3 re-reads an answer: its chunk is held while the stream is live.
  const endFirst = scheduler.backgroundWork(3, "idle");
  void submit(3);
  await tick();
  assert.deepEqual(decoded, [], "held while a stream is live");
  // A request wants sequence 3: the held chunk goes at once.
  scheduler.hurry(3);
  await tick();
  assert.deepEqual(decoded, [3]);

  // Stopped between chunks, the re-read may still submit the chunk it had started on: it goes too,
  // instead of waiting for the stream to end (and the request with it).
  void submit(3);
  await tick();
  assert.deepEqual(decoded, [3, 3], "a chunk submitted after the request came is not held");
  endFirst();

  // The next re-read on that sequence is background work like any other again.
  const endSecond = scheduler.backgroundWork(3, "idle");
  void submit(3);
  await tick();
  assert.deepEqual(decoded, [3, 3], "a new re-read waits for the stream again");
  leaveStream();
  await tick();
  assert.deepEqual(decoded, [3, 3, 3], "and goes once no stream is live");
  endSecond();
});

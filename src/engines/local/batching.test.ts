import assert from "node:assert/strict";
import { test } from "node:test";
import type { BatchItem, PrioritizedBatchItem, Token } from "node-llama-cpp";
import { inSequenceOrder } from "./batching.ts";

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

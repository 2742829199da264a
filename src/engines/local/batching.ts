import type { BatchingOptions, BatchItem, PrioritizedBatchItem } from "node-llama-cpp";

export interface BatchStats {
  /** Batches handed to llama_decode. */
  batches: number;
  /** Tokens decoded in them (prompt and generated). */
  tokens: number;
  /** Batches that carried tokens of two or more sequences: continuous batching at work. */
  sharedBatches: number;
  /** The most sequences seen in one batch. */
  maxSequencesInBatch: number;
}

/**
 * How node-llama-cpp groups the sequences' pending tokens into llama.cpp batches. The split is
 * node-llama-cpp's "maximum parallelism" (every sequence with pending tokens gets a share of the
 * batch, so one long prompt never starves the streams being decoded); on top, it counts what
 * each batch carried, which is how tests observe that concurrent requests share batches.
 */
export class BatchScheduler {
  private readonly counters: BatchStats = { batches: 0, tokens: 0, sharedBatches: 0, maxSequencesInBatch: 0 };

  constructor(private readonly batchSize: number) {}

  stats(): BatchStats {
    return { ...this.counters };
  }

  options(): BatchingOptions {
    return {
      dispatchSchedule: "nextCycle",
      itemPrioritizationStrategy: (input) => this.prioritize(input),
    };
  }

  private prioritize({ items, size }: { items: readonly BatchItem[]; size: number }): PrioritizedBatchItem[] {
    const plan = maximumParallelism(items, size);
    // Mirror node-llama-cpp's fitting (a zero share still gets one token while slots are left).
    let left = this.batchSize;
    let sequences = 0;
    let tokens = 0;
    for (const { item, processAmount } of plan) {
      const take = Math.min(processAmount <= 0 ? 1 : processAmount, item.tokens.length, left);
      if (take <= 0) {
        if (left === 0) break;
        continue;
      }
      left -= take;
      tokens += take;
      sequences++;
    }
    if (tokens > 0) {
      this.counters.batches++;
      this.counters.tokens += tokens;
      if (sequences > 1) this.counters.sharedBatches++;
      this.counters.maxSequencesInBatch = Math.max(this.counters.maxSequencesInBatch, sequences);
    }
    return plan;
  }
}

/** node-llama-cpp's built-in strategy (not exported by the package), restated. */
function maximumParallelism(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  let free = size;
  const even = Math.floor(free / Math.max(1, items.length));
  const out: PrioritizedBatchItem[] = [];
  const clipped: PrioritizedBatchItem[] = [];
  for (const item of items) {
    const entry = { item, processAmount: Math.min(item.tokens.length, free, even) };
    out.push(entry);
    free -= entry.processAmount;
    if (entry.processAmount < item.tokens.length) clipped.push(entry);
    if (free === 0) break;
  }
  for (let passes = 3; free > 0 && clipped.length > 0 && passes > 0; passes--) {
    const step = Math.ceil(free / clipped.length);
    for (let i = 0; i < clipped.length && free > 0; i++) {
      const entry = clipped[i]!;
      const add = Math.min(entry.item.tokens.length - entry.processAmount, free, step);
      entry.processAmount += add;
      free -= add;
      if (entry.processAmount === entry.item.tokens.length) clipped.splice(i--, 1);
    }
  }
  clipped.sort((a, b) => b.item.evaluationPriority - a.item.evaluationPriority);
  for (let i = 0; i < clipped.length && free > 0; i++) {
    const entry = clipped[i]!;
    const add = Math.min(entry.item.tokens.length - entry.processAmount, free);
    entry.processAmount += add;
    free -= add;
    if (entry.processAmount === entry.item.tokens.length) clipped.splice(i--, 1);
  }
  return out;
}

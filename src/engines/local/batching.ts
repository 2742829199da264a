import type { BatchingOptions, BatchItem, LlamaContext, PrioritizedBatchItem } from "node-llama-cpp";

/** Longest a ready token waits for the other active sequences before its batch goes anyway. */
const MAX_GATHER_MS = 10;

/** node-llama-cpp 3.21's internal entry point through which every sequence queues tokens. */
type DecodeTokens = (request: { tokens: readonly number[] }, logitDataMapper: unknown) => Promise<unknown>;
interface Submission {
  release(): void;
}

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
 * Makes concurrent generations share llama.cpp batches, and counts what each batch carried (how
 * tests observe continuous batching).
 *
 * Left alone, node-llama-cpp dispatches a batch as soon as any sequence has a token ready. Its
 * sequences' next tokens become ready one by one (each is sampled separately after the batch), so
 * with several streams the first ready one goes alone, the others form the next batch, and the
 * streams settle into alternating one-sequence batches: measured here, 2 streams took 663 batches
 * for 664 tokens. Each batch costs about the same whether it carries one token or eight (the
 * weights are read once either way), so that halves or worse the aggregate throughput.
 *
 * The gate holds a ready token until every active generation has one ready (or has a long prompt
 * already being evaluated), then releases them together, so they land in one batch. A generation
 * that is busy elsewhere delays the others by at most MAX_GATHER_MS. The split of a batch among
 * sequences is node-llama-cpp's "maximum parallelism" (every sequence gets a share, so a long
 * prompt never starves the streams being decoded).
 */
export class BatchScheduler {
  private readonly counters: BatchStats = { batches: 0, tokens: 0, sharedBatches: 0, maxSequencesInBatch: 0 };
  private active = 0;
  private readonly waiting: Submission[] = [];
  /** Submitted prompts longer than a batch share, still being evaluated: their owners will not come back soon. */
  private longRunning = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly batchSize: number) {}

  /**
   * Routes the context's token submissions through the gate. It hooks node-llama-cpp's internal
   * `_decodeTokens` (the version is pinned); if that ever changes, generation still works and
   * only the gathering is lost, which the batching test catches.
   */
  attach(context: LlamaContext): void {
    const internals = context as unknown as { _decodeTokens?: DecodeTokens };
    const original = internals._decodeTokens;
    if (typeof original !== "function") return;
    internals._decodeTokens = (request, mapper) =>
      new Promise((resolve, reject) => {
        this.waiting.push({
          release: () => {
            // A prompt too long for one batch share keeps its owner away for several batches:
            // the others must not wait for it. Anything shorter comes back with this batch.
            const long = request.tokens.length > this.batchSize / Math.max(1, this.active);
            if (long) this.longRunning++;
            original
              .call(context, request, mapper)
              .finally(() => {
                if (long) this.longRunning--;
              })
              .then(resolve, reject);
          },
        });
        this.check();
      });
  }

  /** A generation starts using a sequence; returns the call that ends it. */
  enter(): () => void {
    this.active++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.active--;
      this.check();
    };
  }

  private check(): void {
    if (this.waiting.length === 0) return;
    if (this.waiting.length + this.longRunning >= this.active) {
      this.flush();
    } else {
      this.timer ??= setTimeout(() => this.flush(), MAX_GATHER_MS);
    }
  }

  /** Queues every waiting submission in one go: node-llama-cpp then decodes them in one batch. */
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const submission of this.waiting.splice(0)) submission.release();
  }

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

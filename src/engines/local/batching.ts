import type { BatchingOptions, BatchItem, LlamaContext, LlamaContextSequence, PrioritizedBatchItem } from "node-llama-cpp";
import { countBatch, countSample, enterPhase, profiling } from "../profile.ts";

/**
 * Once no submission of this context is being decoded, how long a ready token waits for the next
 * sequence to come back (each new arrival restarts it: sequences sample one after another).
 */
const GATHER_GAP_MS = 4;
/** Longest a ready token waits, counted once nothing is being decoded, before its batch goes anyway. */
const MAX_GATHER_MS = 20;

/** node-llama-cpp 3.21's internal entry point through which every sequence queues tokens. */
type DecodeTokens = (request: { sequenceId: number; tokens: readonly number[] }, logitDataMapper: unknown) => Promise<unknown>;
/** node-llama-cpp 3.21's internal queue of submissions, read to learn which sequence an item is. */
interface QueuedDecode {
  sequenceId: number;
  tokens: readonly number[];
}
interface Submission {
  release(): void;
}

/**
 * How the gate treats the submissions of a sequence doing background work (not a live generation):
 * - "idle": held while any live generation is active, so background work never slows a stream
 *   (an answer's re-read after its request);
 * - "ride": released together with the live generations' next batch, or at once when there are
 *   none (the next-turn form of an answer prepared while the answer is generated: a token or two
 *   per batch, in the batches that run anyway).
 */
export type BackgroundMode = "idle" | "ride";

interface Rider {
  sequenceId: number;
  mode: BackgroundMode;
  submission: Submission;
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
  /** Tokens of background work (re-reads, next-turn forms) handed to llama.cpp. */
  backgroundTokens: number;
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
 * already being evaluated), then releases them together, so they land in one batch. While some
 * generations' tokens are still being decoded, the others wait for them (nothing else could run
 * before that decode ends), which keeps a stream that joined late in step with the rest; once
 * nothing is being decoded, a generation busy elsewhere delays the others by at most
 * MAX_GATHER_MS. Within a batch the tokens go in sequence order (see `inSequenceOrder`). The split of a batch among
 * sequences is node-llama-cpp's "maximum parallelism" (every sequence gets a share, so a long
 * prompt never starves the streams being decoded).
 */
export class BatchScheduler {
  private readonly counters: BatchStats = { batches: 0, tokens: 0, sharedBatches: 0, maxSequencesInBatch: 0, backgroundTokens: 0 };
  private active = 0;
  private readonly waiting: Submission[] = [];
  /** Sequences doing background work, and how their submissions wait (see BackgroundMode). */
  private readonly background = new Map<number, BackgroundMode>();
  private readonly riders: Rider[] = [];
  /** Background sequences a request waits for: what they still submit is not held. */
  private readonly hurried = new Set<number>();
  /** Submitted prompts longer than a batch share, still being evaluated: their owners will not come back soon. */
  private longRunning = 0;
  /** Released submissions of one batch share or less, not yet decoded: their owners come back right after. */
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  /** When the oldest waiting token started waiting with nothing in flight. */
  private gatherStartedAt: number | null = null;
  private queue: () => readonly QueuedDecode[] = () => [];
  /** Ends the "gate" phase of the profile (see profile.ts) when the held tokens go. */
  private leaveGatePhase: (() => void) | null = null;

  constructor(private readonly batchSize: number) {}

  /**
   * Routes the context's token submissions through the gate. It hooks node-llama-cpp's internal
   * `_decodeTokens` (the version is pinned); if that ever changes, generation still works and
   * only the gathering is lost, which the batching test catches.
   */
  attach(context: LlamaContext): void {
    const internals = context as unknown as { _decodeTokens?: DecodeTokens; _queuedDecodes?: QueuedDecode[] };
    const original = internals._decodeTokens;
    if (typeof original !== "function") return;
    this.queue = () => internals._queuedDecodes ?? [];
    if (profiling) profileNative(context);
    internals._decodeTokens = (request, mapper) =>
      new Promise((resolve, reject) => {
        const mode = this.background.get(request.sequenceId);
        if (mode) {
          // Not counted in flight: no live generation waits for a background sequence to come back.
          const submission = {
            release: () => {
              this.counters.backgroundTokens += request.tokens.length;
              original.call(context, request, mapper).then(resolve, reject);
            },
          };
          // A request already waits for this sequence (see `hurry`): nothing holds it.
          if (this.hurried.has(request.sequenceId)) return submission.release();
          this.riders.push({ sequenceId: request.sequenceId, mode, submission });
          this.check();
          return;
        }
        if (profiling && this.waiting.length === 0) this.leaveGatePhase = enterPhase("gate");
        this.waiting.push({
          release: () => {
            // A prompt too long for one batch share keeps its owner away for several batches:
            // the others must not wait for it. Anything shorter comes back with this batch.
            const long = request.tokens.length > this.batchSize / Math.max(1, this.active);
            if (long) this.longRunning++;
            else this.inFlight++;
            original
              .call(context, request, mapper)
              .finally(() => {
                if (long) this.longRunning--;
                else this.inFlight--;
                this.check();
              })
              .then(resolve, reject);
          },
        });
        this.check();
      });
  }

  /** Live generations now (background work not counted). */
  get liveGenerations(): number {
    return this.active;
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

  /**
   * Marks `sequenceId` as doing background work until the returned call; its submissions then
   * wait as `mode` says instead of being gathered with the live generations.
   */
  backgroundWork(sequenceId: number, mode: BackgroundMode): () => void {
    this.background.set(sequenceId, mode);
    this.hurried.delete(sequenceId);
    return () => {
      if (this.background.get(sequenceId) === mode) {
        this.background.delete(sequenceId);
        this.hurried.delete(sequenceId);
      }
      this.releaseRiders((r) => r.sequenceId === sequenceId);
    };
  }

  /**
   * A request wants `sequenceId`: its held background submissions go now (node-llama-cpp cannot
   * take back a submission, so the one in the way goes with the next batch), and so does any it
   * submits until its background work ends. The work stops at its next check, but a chunk it
   * had already started on reaches the gate a few awaits later (node-llama-cpp takes the
   * sequence's lock first): held, it would wait for every live stream to end, and the request
   * with it.
   */
  hurry(sequenceId: number): void {
    if (this.background.has(sequenceId)) this.hurried.add(sequenceId);
    this.releaseRiders((r) => r.sequenceId === sequenceId);
  }

  private releaseRiders(which: (rider: Rider) => boolean): void {
    for (let i = 0; i < this.riders.length; i++) {
      const rider = this.riders[i]!;
      if (!which(rider)) continue;
      this.riders.splice(i--, 1);
      rider.submission.release();
    }
  }

  private check(): void {
    // With no live generation, background work has the machine to itself.
    if (this.active === 0 && this.riders.length > 0) this.releaseRiders(() => true);
    if (this.waiting.length === 0) return;
    if (this.waiting.length + this.longRunning >= this.active) return this.flush();
    if (this.inFlight > 0) {
      // The missing sequences are in the batch being decoded now. llama.cpp decodes one batch at a
      // time, so nothing can run before that batch ends anyway: wait for them at no cost, which
      // keeps every stream in the same phase (as llama-server's slot loop does). Without this a
      // stream that joined late stays a batch out of step with the others for its whole life.
      this.clearTimer();
      return;
    }
    const now = performance.now();
    this.gatherStartedAt ??= now;
    const left = this.gatherStartedAt + MAX_GATHER_MS - now;
    if (left <= 0) return this.flush();
    // Restarted on every arrival: after a batch, its sequences sample one after another.
    this.clearTimer();
    this.timer = setTimeout(() => this.flush(), Math.min(GATHER_GAP_MS, left));
  }

  /** Queues every waiting submission in one go: node-llama-cpp then decodes them in one batch. */
  private flush(): void {
    this.clearTimer();
    this.gatherStartedAt = null;
    this.leaveGatePhase?.();
    this.leaveGatePhase = null;
    for (const submission of this.waiting.splice(0)) submission.release();
    // Released in the same tick: node-llama-cpp puts them into this very batch.
    this.releaseRiders((r) => r.mode === "ride");
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
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
    const plan = inSequenceOrder(maximumParallelism(items, size), this.queue());
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

/** Times node-llama-cpp 3.21's native decode and sampling calls for the profile (profile.ts). */
function profileNative(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: Record<string, unknown> })._ctx;
  if (!native) return;
  const timed = (name: string, phase: "decode" | "sample", count: (args: unknown[]) => void) => {
    const original = native[name];
    if (typeof original !== "function") return;
    // Own properties shadow the addon's read-only prototype methods.
    define(native, name, (...args: unknown[]) => {
      count(args);
      const leave = enterPhase(phase);
      const result = (original as (...a: unknown[]) => unknown).apply(native, args);
      if (result instanceof Promise) return result.finally(leave);
      leave();
      return result;
    });
  };
  let batchSize = 0;
  const initBatch = native.initBatch;
  if (typeof initBatch === "function") {
    define(native, "initBatch", (size: number) => {
      batchSize = size;
      return (initBatch as (size: number) => unknown).call(native, size);
    });
  }
  timed("decodeBatch", "decode", () => countBatch(batchSize));
  timed("sampleToken", "sample", () => countSample());
}

function define(target: object, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, writable: true, configurable: true });
}

/** The llama.cpp sequence id of a node-llama-cpp sequence (3.21 keeps it internal). */
export function sequenceIdOf(sequence: LlamaContextSequence): number {
  return (sequence as unknown as { _sequenceId: number })._sequenceId;
}

/**
 * Puts a batch's items in ascending sequence-id order: the order of their tokens in the batch.
 *
 * Why it matters: each sequence has its own KV stream (llama.cpp's default, `kv_unified = false`),
 * and for such caches llama_decode cuts the batch into micro-batches with `split_equal(…,
 * sequential = true)`, which only puts sequences together whose ids follow one another in batch
 * order (0, 1, 2…). node-llama-cpp queues items in the order their tokens became ready, so eight
 * streams in arrival order (say 5, 2, 7, 0…) were run as up to eight one-token forward passes,
 * each reading all the weights: the batch was shared in name only. llama-server adds its slots in
 * id order, which is why it got twice the 8-stream throughput.
 */
export function inSequenceOrder(plan: PrioritizedBatchItem[], queue: readonly QueuedDecode[]): PrioritizedBatchItem[] {
  // node-llama-cpp builds each item with the queued submission's own `tokens` array.
  const sequenceOf = new Map<readonly number[], number>();
  for (const queued of queue) sequenceOf.set(queued.tokens, queued.sequenceId);
  const id = (entry: PrioritizedBatchItem) => sequenceOf.get(entry.item.tokens) ?? Number.MAX_SAFE_INTEGER;
  return plan.map((entry, index) => ({ entry, index })).sort((a, b) => id(a.entry) - id(b.entry) || a.index - b.index).map(({ entry }) => entry);
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

import type { LlamaContextSequence, Token } from "node-llama-cpp";

export interface PooledSequence {
  readonly index: number;
  readonly sequence: LlamaContextSequence;
  busy: boolean;
  /** When it was last released (0: never used), to evict the least recently used on a tie. */
  lastUsed: number;
  /** Set while follow-up work runs on it after its request (see `releaseAfter`). */
  settling: Settling | null;
}

export interface Settling {
  /** Aborting it stops the work and hands the sequence back. */
  controller: AbortController;
  /**
   * The tokens the sequence will hold when the work is done: what placement compares prompts with.
   * Work that learns its target as it goes (see nextTurnAhead.ts) updates it.
   */
  target: readonly Token[];
  /**
   * Set for work borrowed next to a live generation (`borrowNear`): it rides in that
   * generation's batches, so for placement it counts as live (see `liveNeighbours`).
   */
  rides?: boolean;
}

interface Waiter {
  prompt: readonly Token[];
  /** The settling sequence this request was placed on; absent: any sequence that frees up. */
  wants: PooledSequence | null;
  resolve: (entry: PooledSequence) => void;
}

/**
 * Hands out the parallel sequences of one llama.cpp context. Requests running on different
 * sequences are decoded in the same batch by node-llama-cpp, so the pool size is the number of
 * users served at once. When several sequences are idle, the one whose cached tokens share the
 * longest prefix with the new prompt wins, so the next turn of a conversation lands where its
 * history is already evaluated. When no idle sequence holds at least half of the prompt (typically a
 * new conversation), one next to the busy sequences is taken (so concurrent streams share
 * llama.cpp micro-batches), else the least recently used one, so the freshest conversations stay
 * in memory.
 */
export class SequencePool {
  private readonly entries: PooledSequence[];
  private readonly waiters: Waiter[] = [];

  constructor(sequences: LlamaContextSequence[]) {
    this.entries = sequences.map((sequence, index) => ({ index, sequence, busy: false, lastUsed: 0, settling: null }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** Every sequence, busy or not (for statistics and saving at shutdown). */
  sequences(): readonly PooledSequence[] {
    return this.entries;
  }

  get busyCount(): number {
    return this.entries.filter((e) => e.busy).length;
  }

  get waitingCount(): number {
    return this.waiters.length;
  }

  /**
   * Waits for a sequence; rejects at once if `signal` aborts while waiting. A sequence still doing
   * follow-up work counts as available: its work is abandoned and the request gets it as soon as
   * the work has stopped (within one batch).
   */
  acquire(prompt: readonly Token[], signal?: AbortSignal): Promise<PooledSequence> {
    const choice = this.choose(prompt);
    if (choice && !choice.settling) {
      choice.busy = true;
      return Promise.resolve(choice);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { prompt, wants: choice ?? null, resolve };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal?.reason ?? new Error("aborted"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      waiter.resolve = (entry) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(entry);
      };
      this.waiters.push(waiter);
      choice?.settling?.controller.abort();
    });
  }

  release(entry: PooledSequence): void {
    entry.lastUsed = performance.now();
    // A request placed on this very sequence first, then whoever waited longest for any.
    let at = this.waiters.findIndex((w) => w.wants === entry);
    if (at < 0) at = this.waiters.findIndex((w) => w.wants === null);
    const next = at >= 0 ? this.waiters.splice(at, 1)[0] : undefined;
    if (next) {
      next.resolve(entry); // stays busy: handed straight to the next waiter
    } else {
      entry.busy = false;
    }
  }

  /**
   * Releases `entry` once `work` has run on it (the caller does not wait). The work gets a signal
   * that aborts as soon as a request wants this sequence, and is skipped when one is waiting
   * already: follow-up work only ever uses time no request is asking for.
   */
  releaseAfter(entry: PooledSequence, target: readonly Token[], work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    if (this.waiters.length > 0) {
      this.release(entry);
      return Promise.resolve();
    }
    const controller = new AbortController();
    entry.settling = { controller, target };
    entry.lastUsed = performance.now();
    return work(controller.signal)
      .catch(() => undefined)
      .finally(() => {
        entry.settling = null;
        this.release(entry);
      });
  }

  /**
   * Takes an idle sequence next to `near` for background work, or returns null: when a request is
   * waiting, or neither neighbour is idle (and allowed by `canTake`). Why a neighbour: each sequence has its own KV stream,
   * and llama.cpp decodes together only sequences whose ids follow one another (see
   * `betterForNew`), so work on a neighbour rides in `near`'s forward passes instead of adding its
   * own. The work gets the same signal as `releaseAfter`'s (a request wanting the sequence aborts
   * it) and its settling state, whose target it may update; the sequence is released when it ends.
   */
  borrowNear(
    near: PooledSequence,
    canTake: (entry: PooledSequence) => boolean,
    work: (entry: PooledSequence, signal: AbortSignal, settling: Settling) => Promise<void>,
  ): Promise<void> | null {
    if (this.waiters.length > 0) return null;
    const candidates = [this.entries[near.index + 1], this.entries[near.index - 1]].filter((e): e is PooledSequence => e !== undefined && !e.busy && canTake(e));
    // Of two idle neighbours, the one used least recently: the freshest conversation stays.
    const entry = candidates.sort((a, b) => a.lastUsed - b.lastUsed)[0];
    if (!entry) return null;
    entry.busy = true;
    // Its old content is about to be replaced: nothing is placed on it for that.
    const settling: Settling = { controller: new AbortController(), target: [], rides: true };
    entry.settling = settling;
    return work(entry, settling.controller.signal, settling)
      .catch(() => undefined)
      .finally(() => {
        entry.settling = null;
        this.release(entry);
      });
  }

  /** Abandons all follow-up work (at shutdown). */
  abandonSettling(): void {
    for (const entry of this.entries) entry.settling?.controller.abort();
  }

  /**
   * The sequence for a prompt: among idle and settling ones, the one sharing the longest prefix
   * with it; a settling one is only taken for its own prefix or when nothing is idle.
   */
  private choose(prompt: readonly Token[]): PooledSequence | undefined {
    let best: PooledSequence | undefined;
    let bestShared = -1;
    let fresh: PooledSequence | undefined;
    let freshSettling: PooledSequence | undefined;
    let oldestRider: PooledSequence | undefined;
    for (const entry of this.entries) {
      if (entry.busy && !entry.settling) continue;
      // Two requests never wait for the same settling sequence: the second one looks elsewhere.
      if (entry.settling && this.waiters.some((w) => w.wants === entry)) continue;
      const shared = sharedPrefixLength(entry.settling?.target ?? entry.sequence.contextTokens, prompt);
      if (shared > bestShared || (shared === bestShared && best !== undefined && entry.lastUsed < best.lastUsed)) {
        best = entry;
        bestShared = shared;
      }
      // Work riding next to a live generation is taken for a new prompt only when nothing else
      // is free: it prepares that generation's next turn.
      if (entry.settling?.rides) {
        if (!oldestRider || entry.lastUsed < oldestRider.lastUsed) oldestRider = entry;
      } else if (entry.settling) {
        if (!freshSettling || this.betterForNew(entry, freshSettling)) freshSettling = entry;
      } else if (!fresh || this.betterForNew(entry, fresh)) fresh = entry;
    }
    // A few shared tokens (the template's start, a common first word) are not worth pushing
    // another conversation out of memory for: like llama-server, reuse a sequence only when it
    // holds at least half of the prompt, else take a fresh one.
    if (best && bestShared * 2 >= prompt.length) return best;
    // An idle sequence first; one still settling only when none is idle (its follow-up work is
    // then stopped), or when every idle one is walled off from the live streams by re-reads while
    // the settling one touches them (see `walledIn`); work riding next to a live stream last.
    if (fresh && freshSettling && this.walledIn(fresh, freshSettling)) return freshSettling;
    return fresh ?? freshSettling ?? oldestRider;
  }

  /**
   * For a prompt with no history here, which of two candidates (both idle, or both settling) is
   * better: first, one next to a live generation (or to work riding in its batches). Each sequence
   * has its own KV stream, and llama.cpp decodes together only sequences whose ids follow one
   * another (see batching.ts, `inSequenceOrder`), so four streams on sequences 1, 2, 3 and 7 cost
   * two forward passes per token where 0, 1, 2 and 3 cost one. Only live neighbours count: a
   * neighbour re-reading an answer is held while streams run (batching.ts, "idle"), so it joins no
   * batch, and counting it placed measured 4-stream runs on 1, 2, 3 + 7 at 0.65× of the machine's
   * ceiling. Then the least recently used (the freshest conversations stay in memory).
   * (Pool index = sequence id: the sequences are the context's first, made in order.)
   */
  private betterForNew(a: PooledSequence, b: PooledSequence): boolean {
    const [x, y] = [this.liveNeighbours(a), this.liveNeighbours(b)];
    if (x !== y) return x > y;
    // A first stream (nothing live to join) goes into the longer run of free sequences: streams
    // arriving together grow one run from its place, and a short run between re-reads walls them
    // in before they all have a place (three 1-stream answers re-reading on 0, 2 and 4 put the
    // first of four new streams on 1 or 3, measured at 0.63× of the 4-stream figure).
    if (x === 0) {
      const [r, s] = [this.freeRun(a), this.freeRun(b)];
      if (r !== s) return r > s;
    }
    return a.lastUsed < b.lastUsed;
  }

  /**
   * True when placing a new stream on the idle `fresh` would start a second run of live sequences
   * (it touches no live one) while the settling `settling` touches one. llama.cpp then decodes
   * the runs in separate forward passes, every step, for as long as the streams last (0.63× of
   * the machine's 4-stream figure, measured); stopping one answer's re-read costs that answer's
   * next turn the re-read once. So the re-read gives way.
   */
  private walledIn(fresh: PooledSequence, settling: PooledSequence): boolean {
    return this.liveNeighbours(fresh) === 0 && this.liveNeighbours(settling) > 0;
  }

  /** How many free sequences (neither busy nor settling) lie in a row with `entry`, itself included. */
  private freeRun(entry: PooledSequence): number {
    const free = (e: PooledSequence | undefined) => e !== undefined && !e.busy && e.settling === null;
    let run = 1;
    for (let i = entry.index - 1; free(this.entries[i]); i--) run++;
    for (let i = entry.index + 1; free(this.entries[i]); i++) run++;
    return run;
  }

  private liveNeighbours(entry: PooledSequence): number {
    // A settling sequence a request already waits for is about to go live too.
    const live = (e: PooledSequence | undefined) =>
      e !== undefined && e.busy && (e.settling === null || e.settling.rides === true || this.waiters.some((w) => w.wants === e));
    return Number(live(this.entries[entry.index - 1])) + Number(live(this.entries[entry.index + 1]));
  }
}

export function sharedPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

import type { LlamaContextSequence, Token } from "node-llama-cpp";

export interface PooledSequence {
  readonly index: number;
  readonly sequence: LlamaContextSequence;
  busy: boolean;
  /** When it was last released (0: never used), to evict the least recently used on a tie. */
  lastUsed: number;
}

/**
 * Hands out the parallel sequences of one llama.cpp context. Requests running on different
 * sequences are decoded in the same batch by node-llama-cpp, so the pool size is the number of
 * users served at once. When several sequences are idle, the one whose cached tokens share the
 * longest prefix with the new prompt wins, so the next turn of a conversation lands where its
 * history is already evaluated. When no idle sequence holds at least half of the prompt (typically a
 * new conversation), the least recently used one is taken, so the freshest conversations stay in
 * memory.
 */
export class SequencePool {
  private readonly entries: PooledSequence[];
  private readonly waiters: Array<{ prompt: readonly Token[]; resolve: (entry: PooledSequence) => void }> = [];

  constructor(sequences: LlamaContextSequence[]) {
    this.entries = sequences.map((sequence, index) => ({ index, sequence, busy: false, lastUsed: 0 }));
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

  /** Waits for an idle sequence; rejects at once if `signal` aborts while waiting. */
  acquire(prompt: readonly Token[], signal?: AbortSignal): Promise<PooledSequence> {
    const free = this.bestIdle(prompt);
    if (free) {
      free.busy = true;
      return Promise.resolve(free);
    }
    return new Promise((resolve, reject) => {
      const waiter = { prompt, resolve };
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
    });
  }

  release(entry: PooledSequence): void {
    entry.lastUsed = performance.now();
    const next = this.waiters.shift();
    if (next) {
      next.resolve(entry); // stays busy: handed straight to the next waiter
    } else {
      entry.busy = false;
    }
  }

  private bestIdle(prompt: readonly Token[]): PooledSequence | undefined {
    let best: PooledSequence | undefined;
    let bestShared = -1;
    let oldest: PooledSequence | undefined;
    for (const entry of this.entries) {
      if (entry.busy) continue;
      const shared = sharedPrefixLength(entry.sequence.contextTokens, prompt);
      if (shared > bestShared || (shared === bestShared && best !== undefined && entry.lastUsed < best.lastUsed)) {
        best = entry;
        bestShared = shared;
      }
      if (!oldest || entry.lastUsed < oldest.lastUsed) oldest = entry;
    }
    // A few shared tokens (the template's start, a common first word) are not worth pushing
    // another conversation out of memory for: like llama-server, reuse a sequence only when it
    // holds at least half of the prompt, else take the least recently used one.
    return best && bestShared * 2 >= prompt.length ? best : oldest;
  }
}

export function sharedPrefixLength(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Token buckets: a bucket holds up to `capacity` tokens and refills continuously at
 * `capacity / windowMs`. Unlike fixed windows, a client can never get twice its limit across a
 * window boundary, and a bucket may go into debt (see `debit`), which is how tokens per minute are
 * charged: the real token count is only known once a completion has finished.
 */

export interface BucketRule {
  /** Largest balance (the burst), e.g. 60 for "60 per minute". */
  capacity: number;
  /** Time to refill an empty bucket completely. */
  windowMs: number;
}

export interface BucketState {
  tokens: number;
  /** When `tokens` was last brought up to date (ms since the epoch, the store's clock). */
  at: number;
}

export interface BucketOutcome {
  allowed: boolean;
  limit: number;
  /** Whole tokens left after this operation (never negative). */
  remaining: number;
  /** Until the bucket is full again. */
  resetMs: number;
  /** Until the refused operation could succeed; 0 when allowed. */
  retryAfterMs: number;
}

/**
 * Where balances live. Both operations are atomic per key, so several processes sharing one store
 * enforce one limit.
 */
export interface BucketStore {
  /**
   * Takes `cost` tokens if the balance allows it (and is positive: a cost of 0 asks "is this
   * bucket out of debt?"); otherwise changes nothing.
   */
  take(key: string, cost: number, rule: BucketRule): Promise<BucketOutcome>;
  /** Takes `cost` tokens unconditionally; the debt is capped at one full bucket. */
  debit(key: string, cost: number, rule: BucketRule): Promise<BucketOutcome>;
  close(): Promise<void>;
}

export type BucketMode = "take" | "debit";

/** The one definition of the arithmetic; the Redis script mirrors it line by line. */
export function applyBucket(
  state: BucketState | undefined,
  now: number,
  cost: number,
  rule: BucketRule,
  mode: BucketMode,
): { state: BucketState; allowed: boolean } {
  const rate = rule.capacity / rule.windowMs;
  let tokens = state ? Math.min(rule.capacity, state.tokens + Math.max(0, now - state.at) * rate) : rule.capacity;
  let allowed = true;
  if (mode === "take") {
    // A cost above the capacity could never be met: it counts as one full bucket.
    const need = Math.min(cost, rule.capacity);
    if (tokens >= need && tokens > 0) tokens -= need;
    else allowed = false;
  } else {
    tokens = Math.max(-rule.capacity, tokens - cost);
  }
  return { state: { tokens, at: now }, allowed };
}

export function outcomeOf(tokens: number, allowed: boolean, cost: number, rule: BucketRule): BucketOutcome {
  const rate = rule.capacity / rule.windowMs;
  // A cost of 0 ("out of debt?") is answered with the wait for one whole token.
  const needed = Math.min(Math.max(cost, 1), rule.capacity);
  return {
    allowed,
    limit: rule.capacity,
    remaining: Math.max(0, Math.floor(tokens)),
    resetMs: Math.ceil(Math.max(0, rule.capacity - tokens) / rate),
    retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil((needed - tokens) / rate)),
  };
}

/** Milliseconds until a bucket with this balance is full, i.e. until forgetting it changes nothing. */
export function msUntilFull(tokens: number, rule: BucketRule): number {
  return Math.ceil(Math.max(0, rule.capacity - tokens) / (rule.capacity / rule.windowMs));
}

/** Balances in this process's memory: the default, and the fallback while Redis is unreachable. */
export class MemoryBucketStore implements BucketStore {
  private readonly buckets = new Map<string, BucketState & { fullAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now, sweepEveryMs = 60_000) {
    // A full bucket and a missing one behave alike, so full ones are dropped to bound memory.
    this.sweeper = setInterval(() => this.sweep(), sweepEveryMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.buckets.size;
  }

  async take(key: string, cost: number, rule: BucketRule): Promise<BucketOutcome> {
    return this.apply(key, cost, rule, "take");
  }

  async debit(key: string, cost: number, rule: BucketRule): Promise<BucketOutcome> {
    return this.apply(key, cost, rule, "debit");
  }

  sweep(): void {
    const now = this.now();
    for (const [key, bucket] of this.buckets) if (bucket.fullAt <= now) this.buckets.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.buckets.clear();
  }

  private apply(key: string, cost: number, rule: BucketRule, mode: BucketMode): BucketOutcome {
    const now = this.now();
    const { state, allowed } = applyBucket(this.buckets.get(key), now, cost, rule, mode);
    this.buckets.set(key, { ...state, fullAt: now + msUntilFull(state.tokens, rule) });
    return outcomeOf(state.tokens, allowed, cost, rule);
  }
}

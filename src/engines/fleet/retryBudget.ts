/**
 * Retries allowed over a sliding window: at most `minRetries + ratio × requests` of them, so a
 * fleet that is failing everywhere gets its requests once (plus a little), not `maxAttempts` times.
 * Counted in one-second buckets.
 */
export class RetryBudget {
  private readonly buckets = new Map<number, { requests: number; retries: number }>();

  constructor(
    private readonly options: { ratio: number; minRetries: number; windowMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  request(): void {
    this.bucket().requests++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    let requests = 0;
    let retries = 0;
    const oldest = Math.floor((this.now() - this.options.windowMs) / 1000);
    for (const [second, b] of this.buckets) {
      if (second <= oldest) this.buckets.delete(second);
      else {
        requests += b.requests;
        retries += b.retries;
      }
    }
    if (retries + 1 > this.options.minRetries + this.options.ratio * requests) return false;
    this.bucket().retries++;
    return true;
  }

  private bucket(): { requests: number; retries: number } {
    const second = Math.floor(this.now() / 1000);
    let b = this.buckets.get(second);
    if (!b) this.buckets.set(second, (b = { requests: 0, retries: 0 }));
    return b;
  }
}

import type { LatencyCounts } from "../types.ts";

/**
 * Sub-millisecond to seconds: routing is a few Redis round trips (~0.1 ms each on a quiet LAN)
 * or none, and the goal it is held to is p50 < 1 ms, p99 < 5 ms.
 */
export const ROUTING_BOUNDS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

/** Running totals of one latency, in Prometheus' cumulative-bucket form (read at scrape time). */
export class LatencyHistogram {
  private readonly totals: LatencyCounts;

  constructor(bounds: readonly number[] = ROUTING_BOUNDS_SECONDS) {
    this.totals = { bounds, counts: bounds.map(() => 0), sum: 0, count: 0 };
  }

  observe(seconds: number): void {
    const t = this.totals;
    for (let i = t.bounds.length - 1; i >= 0 && seconds <= t.bounds[i]!; i--) t.counts[i]!++;
    t.sum += seconds;
    t.count++;
  }

  /** A copy, so a scrape never sees a half-made observation. */
  read(): LatencyCounts {
    return { bounds: this.totals.bounds, counts: [...this.totals.counts], sum: this.totals.sum, count: this.totals.count };
  }
}

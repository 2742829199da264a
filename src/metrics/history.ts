import type { Registry } from "prom-client";

/**
 * The last hour of the service's figures, for the admin dashboard, sampled from the very registry
 * that GET /metrics serves (src/metrics/metrics.ts) — through the same collectors, at the same
 * names — so the dashboard cannot disagree with a Prometheus scrape. Every `intervalMs` a sample
 * reads the few metrics below and derives, per interval, what a Prometheus query would:
 *
 * - gauges: their value (sequences busy, queue length, replica state);
 * - counters: the increase over the interval as a rate per second (`rate()`), or a share of two
 *   increases (cache-hit ratio, error rate); a counter that went down was reset and counts from 0;
 * - histograms: p50/p95 from the bucket increases over the interval (`histogram_quantile()`:
 *   linear within the bucket, the highest finite bound when the rank lands in `+Inf`).
 *
 * Memory is bounded: one ring of `windowMs / intervalMs` points per series (720 × 8 bytes at the
 * 5-s default), at most `maxSeries` series, and a series with no value for a whole window is
 * dropped. A sample reads ~18 metrics and costs well under a millisecond.
 */

export const DASHBOARD_METRICS = {
  sequences_busy: "count",
  sequences: "count",
  queue_length: "count",
  queue_wait_p50: "seconds",
  queue_wait_p95: "seconds",
  tokens_per_second: "per_second",
  completions_per_second: "per_second",
  ttft_p50: "seconds",
  ttft_p95: "seconds",
  cache_hit_ratio: "ratio",
  error_rate: "ratio",
  refusals_per_second: "per_second",
  http_requests_per_second: "per_second",
  http_error_rate: "ratio",
  replica_in_flight: "count",
  replica_in_rotation: "count",
  replica_requests_per_second: "per_second",
  replica_failure_rate: "ratio",
  replica_engine_waiting: "count",
  replica_engine_running: "count",
  replica_kv_usage: "ratio",
} as const;

export type DashboardMetric = keyof typeof DASHBOARD_METRICS;
export type MetricUnit = (typeof DASHBOARD_METRICS)[DashboardMetric];

/** Which line a series is: per model, per fleet replica (with its model), per refusal reason, or service-wide. */
export interface SeriesScope {
  model?: string;
  replica?: string;
  reason?: string;
}

export interface SeriesView {
  /** Stable id, Prometheus-style: `ttft_p95{model="m"}`. */
  key: string;
  metric: DashboardMetric;
  scope: SeriesScope;
  /** One value per time of the view; null where the interval had nothing to measure. */
  values: (number | null)[];
  /** For series derived from a counter: its value at the last sample (what /metrics showed then). */
  total: number | null;
}

export interface HistoryView {
  intervalMs: number;
  windowMs: number;
  /** Milliseconds the last sample took to read and derive. */
  sampleMs: number;
  /** Sample times (ms since the epoch), oldest first. */
  times: number[];
  series: SeriesView[];
}

export interface HistoryOptions {
  intervalMs?: number;
  windowMs?: number;
  maxSeries?: number;
  /** Models to chart even before their first request (counter rates read 0 for them, not nothing). */
  models?: () => string[];
  now?: () => number;
  onError?: (error: unknown) => void;
}

/** The metrics a sample reads, by kind. Names as in src/metrics/metrics.ts and as /metrics shows them. */
const GAUGES = [
  "sputnik_active_sequences",
  "sputnik_sequences",
  "sputnik_queue_length",
  "sputnik_replica_in_flight",
  "sputnik_replica_in_rotation",
  "sputnik_replica_engine_waiting",
  "sputnik_replica_engine_running",
  "sputnik_replica_engine_kv_usage",
] as const;
const COUNTERS = [
  "sputnik_completion_tokens_total",
  "sputnik_completions_total",
  "sputnik_prompt_cache_hit_tokens_total",
  "sputnik_prompt_cache_miss_tokens_total",
  "sputnik_rejected_requests_total",
  "sputnik_http_requests_total",
  "sputnik_replica_requests_total",
  "sputnik_replica_failures_total",
] as const;
const HISTOGRAMS = ["sputnik_time_to_first_token_seconds", "sputnik_queue_wait_seconds"] as const;

type Labels = Record<string, string>;
interface LabelledValue {
  labels: Labels;
  value: number;
}
/** Cumulative bucket counts of one labelled histogram, by upper bound (`Infinity` for +Inf). */
interface HistogramValue {
  labels: Labels;
  buckets: Map<number, number>;
}

/** One read of the registry. */
export interface Reading {
  at: number;
  gauges: Map<string, LabelledValue[]>;
  /** Per counter: label-set id → value. */
  counters: Map<string, Map<string, LabelledValue>>;
  /** Per histogram: label-set id (without `le`) → buckets. */
  histograms: Map<string, Map<string, HistogramValue>>;
}

/** Reads the dashboard's metrics from `registry`: each metric's own `get()`, which runs its collector as a scrape does. */
export async function readRegistry(registry: Registry, at: number): Promise<Reading> {
  const reading: Reading = { at, gauges: new Map(), counters: new Map(), histograms: new Map() };
  const valuesOf = async (name: string) => {
    const metric = registry.getSingleMetric(name);
    if (!metric) return [];
    const got = (await metric.get()) as { values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }> };
    return got.values;
  };
  for (const name of GAUGES) reading.gauges.set(name, (await valuesOf(name)).map((v) => ({ labels: stringLabels(v.labels), value: v.value })));
  for (const name of COUNTERS) {
    const byId = new Map<string, LabelledValue>();
    for (const v of await valuesOf(name)) {
      const labels = stringLabels(v.labels);
      byId.set(labelId(labels), { labels, value: v.value });
    }
    reading.counters.set(name, byId);
  }
  for (const name of HISTOGRAMS) {
    const byId = new Map<string, HistogramValue>();
    for (const v of await valuesOf(name)) {
      if (v.metricName !== undefined && v.metricName !== `${name}_bucket`) continue;
      const { le, ...rest } = stringLabels(v.labels);
      if (le === undefined) continue;
      const id = labelId(rest);
      const entry = byId.get(id) ?? { labels: rest, buckets: new Map<number, number>() };
      entry.buckets.set(le === "+Inf" ? Infinity : Number(le), v.value);
      byId.set(id, entry);
    }
    reading.histograms.set(name, byId);
  }
  return reading;
}

function stringLabels(labels: Record<string, string | number>): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) out[k] = String(v);
  return out;
}

function labelId(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(",");
}

export function seriesKey(metric: DashboardMetric, scope: SeriesScope): string {
  const parts = (["model", "replica", "reason"] as const).filter((k) => scope[k] !== undefined).map((k) => `${k}=${JSON.stringify(scope[k])}`);
  return `${metric}{${parts.join(",")}}`;
}

/**
 * `histogram_quantile(q, …)` over cumulative bucket counts (already the increase over an
 * interval): null without observations.
 */
export function quantileOf(q: number, buckets: Map<number, number>): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? (bounds.length > 0 ? buckets.get(bounds[bounds.length - 1]!)! : 0);
  if (!(total > 0)) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound)!;
    if (count >= rank) {
      if (bound === Infinity) return previousBound;
      // The lowest bucket starts at 0 (or is a point, as `le="0"` of the queue-wait histogram).
      if (bound <= 0) return bound;
      const inBucket = count - previousCount;
      return inBucket > 0 ? previousBound + (bound - previousBound) * ((rank - previousCount) / inBucket) : bound;
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound;
}

/** One derived point of one series. */
interface Point {
  metric: DashboardMetric;
  scope: SeriesScope;
  value: number | null;
  total?: number;
}

/** The increase of a counter value since `previous` (absent: it started at 0; lower: it was reset). */
function increase(current: number, previous: number | undefined): number {
  if (previous === undefined || current < previous) return current;
  return current - previous;
}

/** Sums a counter's increases and current values over label sets, grouped by `groupOf` (null: skipped). */
function counterGroups(current: Reading, previous: Reading, name: string, groupOf: (labels: Labels) => string | null) {
  const out = new Map<string, { increase: number; total: number; labels: Labels }>();
  const before = previous.counters.get(name);
  for (const [id, { labels, value }] of current.counters.get(name) ?? []) {
    const group = groupOf(labels);
    if (group === null) continue;
    const entry = out.get(group) ?? { increase: 0, total: 0, labels };
    entry.increase += increase(value, before?.get(id)?.value);
    entry.total += value;
    out.set(group, entry);
  }
  return out;
}

/** The increase of each labelled histogram's buckets since `previous`. */
function histogramIncrease(current: Reading, previous: Reading, name: string): Map<string, HistogramValue> {
  const out = new Map<string, HistogramValue>();
  const before = previous.histograms.get(name);
  for (const [id, { labels, buckets }] of current.histograms.get(name) ?? []) {
    const old = before?.get(id)?.buckets;
    const reset = old !== undefined && [...buckets].some(([le, count]) => count < (old.get(le) ?? 0));
    const delta = new Map<number, number>();
    for (const [le, count] of buckets) delta.set(le, reset ? count : count - (old?.get(le) ?? 0));
    out.set(id, { labels, buckets: delta });
  }
  return out;
}

/** The dashboard's figures for the interval from `previous` to `current` (gauges only, without `previous`). */
export function derive(current: Reading, previous: Reading | null, knownModels: readonly string[] = []): Point[] {
  const points: Point[] = [];
  const models = new Set(knownModels);
  const gauge = (name: string, metric: DashboardMetric, scopeOf: (labels: Labels) => SeriesScope) => {
    for (const { labels, value } of current.gauges.get(name) ?? []) {
      const scope = scopeOf(labels);
      if (scope.model !== undefined && scope.replica === undefined) models.add(scope.model);
      points.push({ metric, scope, value });
    }
  };
  const perModel = (labels: Labels): SeriesScope => ({ model: labels.model ?? "" });
  const perReplica = (labels: Labels): SeriesScope => ({ model: labels.model ?? "", replica: labels.replica ?? "" });
  gauge("sputnik_active_sequences", "sequences_busy", perModel);
  gauge("sputnik_sequences", "sequences", perModel);
  gauge("sputnik_queue_length", "queue_length", perModel);
  gauge("sputnik_replica_in_flight", "replica_in_flight", perReplica);
  gauge("sputnik_replica_in_rotation", "replica_in_rotation", perReplica);
  gauge("sputnik_replica_engine_waiting", "replica_engine_waiting", perReplica);
  gauge("sputnik_replica_engine_running", "replica_engine_running", perReplica);
  gauge("sputnik_replica_engine_kv_usage", "replica_kv_usage", perReplica);
  for (const name of COUNTERS) for (const { labels } of current.counters.get(name)?.values() ?? []) if (labels.model !== undefined && labels.replica === undefined) models.add(labels.model);
  if (!previous) return points;

  const seconds = (current.at - previous.at) / 1000;
  const rate = (n: number) => (seconds > 0 ? n / seconds : null);
  const share = (part: number, whole: number) => (whole > 0 ? part / whole : null);
  const byModel = (labels: Labels) => labels.model ?? null;

  const tokens = counterGroups(current, previous, "sputnik_completion_tokens_total", byModel);
  const completions = counterGroups(current, previous, "sputnik_completions_total", byModel);
  const failed = counterGroups(current, previous, "sputnik_completions_total", (l) => (Number(l.status) >= 500 ? (l.model ?? null) : null));
  const hits = counterGroups(current, previous, "sputnik_prompt_cache_hit_tokens_total", byModel);
  const misses = counterGroups(current, previous, "sputnik_prompt_cache_miss_tokens_total", byModel);
  const ttft = histogramIncrease(current, previous, "sputnik_time_to_first_token_seconds");
  const wait = histogramIncrease(current, previous, "sputnik_queue_wait_seconds");
  const bucketsOf = (histogram: Map<string, HistogramValue>, model: string) => {
    // Summed over label sets of the model (one today: histograms are labelled by model only).
    const sum = new Map<number, number>();
    for (const { labels, buckets } of histogram.values()) {
      if (labels.model !== model) continue;
      for (const [le, count] of buckets) sum.set(le, (sum.get(le) ?? 0) + count);
    }
    return sum;
  };
  for (const model of [...models].sort()) {
    const scope = { model };
    const done = completions.get(model);
    const hit = hits.get(model)?.increase ?? 0;
    const miss = misses.get(model)?.increase ?? 0;
    points.push({ metric: "tokens_per_second", scope, value: rate(tokens.get(model)?.increase ?? 0), total: tokens.get(model)?.total ?? 0 });
    points.push({ metric: "completions_per_second", scope, value: rate(done?.increase ?? 0), total: done?.total ?? 0 });
    points.push({ metric: "error_rate", scope, value: share(failed.get(model)?.increase ?? 0, done?.increase ?? 0), total: failed.get(model)?.total ?? 0 });
    points.push({ metric: "cache_hit_ratio", scope, value: share(hit, hit + miss), total: hits.get(model)?.total ?? 0 });
    const ttftBuckets = bucketsOf(ttft, model);
    const waitBuckets = bucketsOf(wait, model);
    points.push({ metric: "ttft_p50", scope, value: quantileOf(0.5, ttftBuckets) });
    points.push({ metric: "ttft_p95", scope, value: quantileOf(0.95, ttftBuckets) });
    points.push({ metric: "queue_wait_p50", scope, value: quantileOf(0.5, waitBuckets) });
    points.push({ metric: "queue_wait_p95", scope, value: quantileOf(0.95, waitBuckets) });
  }

  for (const [reason, { increase: n, total }] of counterGroups(current, previous, "sputnik_rejected_requests_total", (l) => l.reason ?? null)) {
    points.push({ metric: "refusals_per_second", scope: { reason }, value: rate(n), total });
  }
  const http = counterGroups(current, previous, "sputnik_http_requests_total", () => "all").get("all");
  const httpFailed = counterGroups(current, previous, "sputnik_http_requests_total", (l) => (Number(l.status) >= 500 ? "all" : null)).get("all");
  points.push({ metric: "http_requests_per_second", scope: {}, value: rate(http?.increase ?? 0), total: http?.total ?? 0 });
  points.push({ metric: "http_error_rate", scope: {}, value: share(httpFailed?.increase ?? 0, http?.increase ?? 0), total: httpFailed?.total ?? 0 });

  const replicaId = (l: Labels) => (l.model !== undefined && l.replica !== undefined ? JSON.stringify([l.model, l.replica]) : null);
  const sent = counterGroups(current, previous, "sputnik_replica_requests_total", replicaId);
  const broken = counterGroups(current, previous, "sputnik_replica_failures_total", replicaId);
  for (const [id, { increase: n, total, labels }] of sent) {
    const scope = perReplica(labels);
    const failures = broken.get(id);
    points.push({ metric: "replica_requests_per_second", scope, value: rate(n), total });
    points.push({ metric: "replica_failure_rate", scope, value: share(failures?.increase ?? 0, n), total: failures?.total ?? 0 });
  }
  return points;
}

interface StoredSeries {
  metric: DashboardMetric;
  scope: SeriesScope;
  values: Float64Array;
  total: number | null;
  /** Number of the last sample that gave it a value (or created it). */
  lastSeen: number;
}

/** The sampler and its ring buffers. `start()` with the service, `stop()` with it. */
export class MetricsHistory {
  readonly intervalMs: number;
  readonly windowMs: number;
  private readonly capacity: number;
  private readonly maxSeries: number;
  private readonly times: Float64Array;
  private readonly series = new Map<string, StoredSeries>();
  /** Samples taken so far; sample n sits at n % capacity. */
  private count = 0;
  private previous: Reading | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastSampleMs = 0;
  private readonly now: () => number;

  constructor(
    private readonly registry: Registry,
    private readonly options: HistoryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5000;
    this.windowMs = options.windowMs ?? 3_600_000;
    this.capacity = Math.max(2, Math.ceil(this.windowMs / this.intervalMs));
    this.maxSeries = options.maxSeries ?? 2000;
    this.times = new Float64Array(this.capacity);
    this.now = options.now ?? Date.now;
  }

  /** Takes a first reading now (the baseline of the first rates), then one every interval. */
  start(): void {
    if (this.timer) return;
    void this.tick();
    // Unref'd: a forgotten stop() never keeps a process alive.
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops sampling; waits for a sample in progress. The history stays readable. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private async tick(): Promise<void> {
    // A slow sample is never overlapped by the next one: that tick is skipped.
    if (this.running) return;
    this.running = this.sample()
      .catch((error: unknown) => this.options.onError?.(error))
      .finally(() => (this.running = null));
    await this.running;
  }

  /** Reads the registry once and appends a point to every series. */
  async sample(): Promise<void> {
    const started = performance.now();
    const reading = await readRegistry(this.registry, this.now());
    const points = derive(reading, this.previous, this.options.models?.() ?? []);
    this.previous = reading;
    this.append(reading.at, points);
    this.lastSampleMs = performance.now() - started;
  }

  private append(at: number, points: Point[]): void {
    const n = this.count++;
    const slot = n % this.capacity;
    this.times[slot] = at;
    const written = new Set<StoredSeries>();
    for (const point of points) {
      const key = seriesKey(point.metric, point.scope);
      let series = this.series.get(key);
      if (!series) {
        if (this.series.size >= this.maxSeries) continue;
        series = { metric: point.metric, scope: point.scope, values: new Float64Array(this.capacity).fill(NaN), total: null, lastSeen: n };
        this.series.set(key, series);
      }
      series.values[slot] = point.value ?? NaN;
      if (point.total !== undefined) series.total = point.total;
      if (point.value !== null) series.lastSeen = n;
      written.add(series);
    }
    for (const [key, series] of this.series) {
      if (written.has(series)) continue;
      series.values[slot] = NaN;
      // Gone for a whole window (a fleet replica DNS no longer lists): nothing of it is left to show.
      if (n - series.lastSeen >= this.capacity) this.series.delete(key);
    }
  }

  /** The samples after `since` (ms since the epoch; all of the window without it), oldest first. */
  read(since?: number): HistoryView {
    const size = Math.min(this.count, this.capacity);
    const first = this.count - size;
    const slots: number[] = [];
    for (let n = first; n < this.count; n++) {
      const slot = n % this.capacity;
      if (since === undefined || this.times[slot]! > since) slots.push(slot);
    }
    return {
      intervalMs: this.intervalMs,
      windowMs: this.windowMs,
      sampleMs: this.lastSampleMs,
      times: slots.map((slot) => this.times[slot]!),
      series: [...this.series].map(([key, s]) => ({
        key,
        metric: s.metric,
        scope: s.scope,
        values: slots.map((slot) => (Number.isNaN(s.values[slot]!) ? null : s.values[slot]!)),
        total: s.total,
      })),
    };
  }
}

import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry, Histogram } from "prom-client";
import type { EngineActivity, ReplicaState, Usage } from "../engines/types.ts";
import { MetricsHistory, quantileOf, seriesKey, type DashboardMetric, type HistoryView, type SeriesScope } from "./history.ts";
import { Metrics, type ModelLoad } from "./metrics.ts";

function usage(prompt: number, completion: number, hit: number): Usage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_cache_hit_tokens: hit,
    prompt_cache_miss_tokens: prompt - hit,
    completion_tokens_details: { reasoning_tokens: 0 },
    prompt_tokens_details: { cached_tokens: hit },
  };
}

/** A history over a real Metrics registry with a hand-driven clock. */
function setup(options: { load?: ModelLoad[]; models?: string[]; intervalMs?: number; windowMs?: number; maxSeries?: number } = {}) {
  let now = 1_000_000;
  const metrics = new Metrics(() => options.load ?? []);
  const history = new MetricsHistory(metrics.registry, {
    intervalMs: options.intervalMs ?? 1000,
    ...(options.windowMs !== undefined ? { windowMs: options.windowMs } : {}),
    ...(options.maxSeries !== undefined ? { maxSeries: options.maxSeries } : {}),
    models: () => options.models ?? [],
    now: () => now,
  });
  return {
    metrics,
    history,
    /** Moves the clock on by `ms` and samples. */
    async after(ms: number) {
      now += ms;
      await history.sample();
    },
  };
}

function replica(name: string, requests: number, failures: number, inFlight: number): ReplicaState {
  return {
    name,
    probe: "up",
    breaker: "closed",
    inRotation: true,
    inFlight,
    maxConcurrency: 4,
    consecutiveFailures: 0,
    requests,
    failures,
    signals: { source: "vllm", waiting: 1, running: inFlight, kvUsage: 0.25, ageMs: 10, error: null },
  };
}

function activity(model: string, replicas: ReplicaState[]): EngineActivity {
  return { model, batches: 0, batchTokens: 0, sharedBatches: 0, rereadsCompleted: 0, rereadsAbandoned: 0, rereadTokens: 0, promptTokenizations: 0, replicas };
}

/** Float figures computed two ways agree to the last few bits. */
function near(actual: number | null | undefined, expected: number): void {
  assert.ok(typeof actual === "number" && Math.abs(actual - expected) < 1e-9, `${actual} ≈ ${expected}`);
}

function latest(view: HistoryView, metric: DashboardMetric, scope: SeriesScope = {}): number | null | undefined {
  const series = view.series.find((s) => s.key === seriesKey(metric, scope));
  return series ? series.values[series.values.length - 1] : undefined;
}

function totalOf(view: HistoryView, metric: DashboardMetric, scope: SeriesScope = {}): number | null | undefined {
  return view.series.find((s) => s.key === seriesKey(metric, scope))?.total;
}

/** A value as GET /metrics prints it (the one source the dashboard must agree with). */
async function scraped(metrics: Metrics, line: RegExp): Promise<number> {
  const text = await metrics.registry.metrics();
  const match = line.exec(text);
  assert.ok(match, `/metrics has ${line}`);
  return Number(match[1]);
}

test("counters become rates per interval, and each total is what /metrics prints", async () => {
  const { metrics, history, after } = setup({ models: ["m"] });
  await after(0);
  metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage: usage(10, 21, 6), ttftMs: 100, totalMs: 1100 });
  metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage: usage(10, 11, 0), ttftMs: 100, totalMs: 600 });
  metrics.observeCompletion({ model: "m", engine: "local", status: 500, usage: usage(10, 0, 0), ttftMs: null, totalMs: 50 });
  metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage: usage(10, 8, 10), ttftMs: 200, totalMs: 600 });
  await after(2000);
  let view = history.read();
  assert.equal(view.times.length, 2);
  assert.equal(latest(view, "tokens_per_second", { model: "m" }), 40 / 2);
  assert.equal(latest(view, "completions_per_second", { model: "m" }), 4 / 2);
  assert.equal(latest(view, "error_rate", { model: "m" }), 1 / 4);
  near(latest(view, "cache_hit_ratio", { model: "m" }), 16 / 40);
  assert.equal(totalOf(view, "tokens_per_second", { model: "m" }), await scraped(metrics, /^sputnik_completion_tokens_total\{model="m"\} (\d+)$/m));
  assert.equal(totalOf(view, "error_rate", { model: "m" }), await scraped(metrics, /^sputnik_completions_total\{model="m",status="500"\} (\d+)$/m));

  // The next interval counts only its own increase: one request, all from the cache, no failure.
  metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage: usage(4, 5, 4), ttftMs: 50, totalMs: 300 });
  await after(500);
  view = history.read();
  assert.equal(latest(view, "tokens_per_second", { model: "m" }), 5 / 0.5);
  assert.equal(latest(view, "error_rate", { model: "m" }), 0);
  assert.equal(latest(view, "cache_hit_ratio", { model: "m" }), 1);
  assert.equal(totalOf(view, "tokens_per_second", { model: "m" }), 45);

  // A quiet interval: rates fall to 0, ratios have nothing to divide (null, not 0).
  await after(1000);
  view = history.read();
  assert.equal(latest(view, "tokens_per_second", { model: "m" }), 0);
  assert.equal(latest(view, "error_rate", { model: "m" }), null);
  assert.equal(latest(view, "cache_hit_ratio", { model: "m" }), null);
  assert.equal(latest(view, "ttft_p95", { model: "m" }), null);
});

test("TTFT and queue-wait quantiles come from the bucket increases of each interval", async () => {
  const { metrics, history, after } = setup({ models: ["m"] });
  await after(0);
  // Interval 1: four slow first tokens (in the 1–2.5 s bucket).
  for (let i = 0; i < 4; i++) metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage: usage(1, 1, 0), ttftMs: 2000, totalMs: 2000 });
  await after(1000);
  let view = history.read();
  // Rank 2 of 4, all in (1, 2.5]: 1 + 1.5 × 2/4.
  near(latest(view, "ttft_p50", { model: "m" }), 1.75);
  near(latest(view, "ttft_p95", { model: "m" }), 1 + 1.5 * (3.8 / 4));

  // Interval 2: ten fast ones (0.025–0.05 s bucket): the slow ones of interval 1 no longer count.
  for (let i = 0; i < 10; i++) metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage: usage(1, 1, 0), ttftMs: 30, totalMs: 30 });
  metrics.queueWait.observe({ model: "m" }, 0);
  metrics.queueWait.observe({ model: "m" }, 0);
  metrics.queueWait.observe({ model: "m" }, 0.3);
  await after(1000);
  view = history.read();
  near(latest(view, "ttft_p50", { model: "m" }), 0.025 + 0.025 * (5 / 10));
  near(latest(view, "ttft_p95", { model: "m" }), 0.025 + 0.025 * (9.5 / 10));
  // Two of three waited nothing (the le="0" bucket); the third is in (0.25, 0.5].
  assert.equal(latest(view, "queue_wait_p50", { model: "m" }), 0);
  near(latest(view, "queue_wait_p95", { model: "m" }), 0.25 + 0.25 * (0.95 * 3 - 2));
});

test("quantiles follow histogram_quantile: +Inf gives the highest finite bound, empty gives null", async () => {
  const registry = new Registry();
  const h = new Histogram({ name: "h_seconds", help: "h", buckets: [1, 2], registers: [registry] });
  h.observe(5);
  h.observe(0.5);
  const buckets = new Map((await h.get()).values.filter((v) => v.metricName === "h_seconds_bucket").map((v) => [v.labels.le === "+Inf" ? Infinity : Number(v.labels.le), v.value]));
  assert.equal(quantileOf(0.95, buckets), 2);
  assert.equal(quantileOf(0.5, buckets), 1);
  assert.equal(quantileOf(0.25, buckets), 0.5);
  assert.equal(quantileOf(0.5, new Map([[1, 0], [Infinity, 0]])), null);
});

test("gauges are read through their collectors, as a scrape reads them; refusals and HTTP are service-wide", async () => {
  const { metrics, history, after } = setup({ load: [{ model: "m", queued: 3, running: 2, capacity: 4, turnEstimateMs: 100 }], models: ["m", "idle"] });
  await after(0);
  let view = history.read();
  assert.equal(latest(view, "sequences_busy", { model: "m" }), 2);
  assert.equal(latest(view, "queue_length", { model: "m" }), 3);
  assert.equal(latest(view, "sequences", { model: "m" }), 4);
  // No rates at the first reading: there is no interval yet.
  assert.equal(latest(view, "tokens_per_second", { model: "m" }), undefined);

  metrics.rejected.inc({ reason: "rate_limit" }, 3);
  metrics.rejected.inc({ reason: "queue_full" });
  metrics.httpRequests.inc({ route: "/v1/chat/completions", method: "POST", status: "200" }, 3);
  metrics.httpRequests.inc({ route: "/v1/chat/completions", method: "POST", status: "503" });
  await after(2000);
  view = history.read();
  assert.equal(latest(view, "refusals_per_second", { reason: "rate_limit" }), 1.5);
  assert.equal(latest(view, "refusals_per_second", { reason: "queue_full" }), 0.5);
  assert.equal(totalOf(view, "refusals_per_second", { reason: "rate_limit" }), await scraped(metrics, /^sputnik_rejected_requests_total\{reason="rate_limit"\} (\d+)$/m));
  assert.equal(latest(view, "http_requests_per_second"), 2);
  assert.equal(latest(view, "http_error_rate"), 0.25);
  // A model without traffic reads 0, not nothing; a gauge it does not have yet stays absent.
  assert.equal(latest(view, "tokens_per_second", { model: "idle" }), 0);
  assert.equal(latest(view, "sequences_busy", { model: "idle" }), undefined);
});

test("fleet replicas get their own series, from the same collectors as /metrics", async () => {
  let replicas = [replica("a", 10, 0, 1), replica("b", 4, 1, 0)];
  const { metrics, history, after } = setup({ models: ["fleet"] });
  metrics.readEngineActivityFrom(() => [activity("fleet", replicas)]);
  await after(0);
  replicas = [replica("a", 14, 0, 2), replica("b", 8, 3, 0)];
  await after(2000);
  const view = history.read();
  const a = { model: "fleet", replica: "a" };
  const b = { model: "fleet", replica: "b" };
  assert.equal(latest(view, "replica_in_flight", a), 2);
  assert.equal(latest(view, "replica_in_rotation", a), 1);
  assert.equal(latest(view, "replica_requests_per_second", a), 2);
  assert.equal(latest(view, "replica_failure_rate", a), 0);
  assert.equal(latest(view, "replica_failure_rate", b), 2 / 4);
  assert.equal(latest(view, "replica_kv_usage", b), 0.25);
  assert.equal(latest(view, "replica_engine_waiting", b), 1);
  assert.equal(totalOf(view, "replica_requests_per_second", b), await scraped(metrics, /^sputnik_replica_requests_total\{model="fleet",replica="b"\} (\d+)$/m));
  // Replicas are not models of their own.
  assert.equal(latest(view, "tokens_per_second", { model: "fleet" }), 0);
  assert.equal(view.series.filter((s) => s.metric === "tokens_per_second").length, 1);
});

test("memory is bounded: one window of points, a capped number of series, and gone series are dropped", async () => {
  let replicas = [replica("old", 0, 0, 0)];
  const { metrics, history, after } = setup({ intervalMs: 1000, windowMs: 3000 });
  metrics.readEngineActivityFrom(() => [activity("fleet", replicas)]);
  for (let i = 0; i < 5; i++) await after(1000);
  let view = history.read();
  assert.equal(view.times.length, 3, "three points in a three-second window at one a second");
  assert.deepEqual(view.times, [1_003_000, 1_004_000, 1_005_000]);
  assert.deepEqual(history.read(1_004_000).times, [1_005_000], "`since` returns only newer points");
  assert.ok(view.series.some((s) => s.scope.replica === "old"));

  replicas = [replica("new", 0, 0, 0)];
  await after(1000);
  view = history.read();
  const old = view.series.find((s) => s.key === seriesKey("replica_in_flight", { model: "fleet", replica: "old" }));
  assert.deepEqual(old?.values, [0, 0, null], "a replica that left reads nothing from then on");
  for (let i = 0; i < 3; i++) await after(1000);
  assert.ok(!history.read().series.some((s) => s.scope.replica === "old"), "after a whole window without it, it is dropped");

  const capped = setup({ maxSeries: 3, load: [{ model: "m", queued: 0, running: 0, capacity: 1, turnEstimateMs: 0 }] });
  await capped.after(0);
  await capped.after(1000);
  assert.equal(capped.history.read().series.length, 3);
});

test("start takes the first reading at once; stop ends the sampling", async () => {
  const metrics = new Metrics();
  const history = new MetricsHistory(metrics.registry, { intervalMs: 60_000 });
  history.start();
  await history.stop();
  const view = history.read();
  assert.equal(view.times.length, 1);
  assert.ok(view.sampleMs >= 0);
});

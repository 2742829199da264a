import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { EngineActivity, ReplicaState, Usage } from "../engines/types.ts";

/** What the admission layer reports per model when scraped. */
export interface ModelLoad {
  model: string;
  queued: number;
  running: number;
  capacity: number;
  /** How long the line takes to move up one place, as the queue estimates it. */
  turnEstimateMs: number;
}

/** One finished completion, as the HTTP layer records it. */
export interface CompletionObservation {
  model: string;
  /** "none" when the model does not exist: such requests are not observed (the name is client input). */
  engine: string;
  status: number;
  usage: Usage;
  /** From arrival to the first generated event, queue wait included (what the client sees). */
  ttftMs: number | null;
  totalMs: number;
}

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Sputnik's Prometheus metrics, in a registry of its own (not prom-client's global one), so two
 * services in one process (tests) never mix their figures. Names follow Prometheus conventions:
 * `_total` counters, `_seconds` histograms, gauges read at scrape time.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<"route" | "method" | "status">;
  readonly rejected: Counter<"reason">;
  readonly queueWait: Histogram<"model">;
  readonly ttft: Histogram<"model">;
  readonly tokensPerSecond: Histogram<"model">;
  private readonly promptTokens: Counter<"model">;
  private readonly completionTokens: Counter<"model">;
  private readonly cacheHitTokens: Counter<"model">;
  private readonly cacheMissTokens: Counter<"model">;
  private readonly completions: Counter<"model" | "status">;
  /** Moderation policies that intervened (src/moderation): labels are the operator's policy names. */
  readonly moderationInterventions: Counter<"policy" | "action" | "stage">;
  private readonly cacheTotals = new Map<string, { hit: number; miss: number }>();
  private engineActivity: () => EngineActivity[] = () => [];
  private draining: () => boolean = () => false;

  constructor(load: () => ModelLoad[] = () => []) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: "sputnik_http_requests_total",
      help: "HTTP requests by route pattern, method and status (499: the client left first)",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.rejected = new Counter({
      name: "sputnik_rejected_requests_total",
      help: "Requests refused by a limit, by reason (rate limits, queue, concurrency caps, hygiene, attack mode)",
      labelNames: ["reason"],
      registers,
    });
    this.queueWait = new Histogram({
      name: "sputnik_queue_wait_seconds",
      help: "Time requests waited in the admission queue before reaching the engine (0 when admitted at once)",
      labelNames: ["model"],
      buckets: [0, ...SECONDS_BUCKETS],
      registers,
    });
    this.ttft = new Histogram({
      name: "sputnik_time_to_first_token_seconds",
      help: "From a request's arrival to its first generated token, queue wait included",
      labelNames: ["model"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.tokensPerSecond = new Histogram({
      name: "sputnik_generation_tokens_per_second",
      help: "Decode speed of each completion: completion tokens over the time after the first token",
      labelNames: ["model"],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
      registers,
    });
    this.promptTokens = new Counter({ name: "sputnik_prompt_tokens_total", help: "Prompt tokens of finished completions", labelNames: ["model"], registers });
    this.completionTokens = new Counter({ name: "sputnik_completion_tokens_total", help: "Generated tokens", labelNames: ["model"], registers });
    this.cacheHitTokens = new Counter({
      name: "sputnik_prompt_cache_hit_tokens_total",
      help: "Prompt tokens whose KV state was reused",
      labelNames: ["model"],
      registers,
    });
    this.cacheMissTokens = new Counter({
      name: "sputnik_prompt_cache_miss_tokens_total",
      help: "Prompt tokens that were evaluated",
      labelNames: ["model"],
      registers,
    });
    // Per model, not per route: the admin dashboard's request and error rates are read from it (src/metrics/history.ts).
    this.completions = new Counter({
      name: "sputnik_completions_total",
      help: "Finished completions of a model by HTTP status (499: the client left first; 5xx: failed)",
      labelNames: ["model", "status"],
      registers,
    });
    this.moderationInterventions = new Counter({
      name: "sputnik_moderation_interventions_total",
      help: "Interventions of moderation policies by policy, action (warn, withhold) and stage (input, output)",
      labelNames: ["policy", "action", "stage"],
      registers,
    });
    const totals = this.cacheTotals;
    new Gauge({
      name: "sputnik_prompt_cache_hit_ratio",
      help: "Share of prompt tokens served from the KV cache since start",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const [model, { hit, miss }] of totals) if (hit + miss > 0) this.set({ model }, hit / (hit + miss));
      },
    });
    new Gauge({
      name: "sputnik_queue_length",
      help: "Requests waiting in a model's admission queue",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const m of load()) this.set({ model: m.model }, m.queued);
      },
    });
    new Gauge({
      name: "sputnik_active_sequences",
      help: "Requests running on a model's engine sequences",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const m of load()) this.set({ model: m.model }, m.running);
      },
    });
    new Gauge({
      name: "sputnik_queue_turn_seconds",
      help: "Time for a model's queue to move up one place, as the queue estimates it (drives estimated waits and early 503s)",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const m of load()) this.set({ model: m.model }, m.turnEstimateMs / 1000);
      },
    });
    new Gauge({
      name: "sputnik_sequences",
      help: "Requests a model can run at once (local: parallel sequences; remote: configured concurrency)",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const m of load()) this.set({ model: m.model }, m.capacity);
      },
    });
    const draining = () => this.draining();
    new Gauge({
      name: "sputnik_draining",
      help: "1 from SIGTERM until exit: not ready, new and queued requests refused, running answers finishing (shutdownTimeoutMs)",
      registers,
      collect() {
        this.set(draining() ? 1 : 0);
      },
    });
    this.registerEngineActivity(registers);
  }

  /** Whether the service is draining (src/serving/lifecycle.ts), for `sputnik_draining`. */
  readDrainingFrom(read: () => boolean): void {
    this.draining = read;
  }

  /** Where local engines' activity is read from: the service wires it once it has both. */
  readEngineActivityFrom(read: () => EngineActivity[]): void {
    this.engineActivity = read;
  }

  /** Counters whose values live in the engines: each scrape copies them. */
  private registerEngineActivity(registers: Registry[]): void {
    const read = () => this.engineActivity();
    const copied = (name: string, help: string, values: Record<string, (a: EngineActivity) => number> | ((a: EngineActivity) => number), label = "outcome") =>
      new Counter({
        name,
        help,
        labelNames: typeof values === "function" ? ["model"] : ["model", label],
        registers,
        collect() {
          this.reset();
          for (const a of read()) {
            if (typeof values === "function") this.inc({ model: a.model }, values(a));
            else for (const [value, get] of Object.entries(values)) this.inc({ model: a.model, [label]: value }, get(a));
          }
        },
      });
    copied("sputnik_engine_batches_total", "llama_decode batches of a local model", (a) => a.batches);
    copied("sputnik_engine_shared_batches_total", "Batches that carried tokens of two or more sequences (continuous batching at work)", (a) => a.sharedBatches);
    copied("sputnik_engine_batch_tokens_total", "Tokens decoded in a local model's batches (prompt and generated)", (a) => a.batchTokens);
    copied("sputnik_engine_reread_tokens_total", "Tokens evaluated re-reading answers in the form the next turn sends them", (a) => a.rereadTokens);
    copied("sputnik_engine_rereads_total", "Answers re-read after their request, by outcome", {
      completed: (a) => a.rereadsCompleted,
      abandoned: (a) => a.rereadsAbandoned,
    });
    this.registerReplicas(registers, read);
  }

  /** Fleet models' replicas as this gateway sees them (src/engines/fleet/), labelled by the replica's name. */
  private registerReplicas(registers: Registry[], read: () => EngineActivity[]): void {
    const replicas = () => read().flatMap((a) => (a.replicas ?? []).map((r) => ({ model: a.model, replica: r.name, state: r })));
    const gauge = (name: string, help: string, value: (r: ReplicaState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["model", "replica"],
        registers,
        collect() {
          this.reset();
          for (const r of replicas()) this.set({ model: r.model, replica: r.replica }, value(r.state));
        },
      });
    gauge("sputnik_replica_in_rotation", "1 while a fleet replica takes new requests (probe not down, breaker closed)", (r) => (r.inRotation ? 1 : 0));
    gauge("sputnik_replica_in_flight", "Requests this gateway has running on a fleet replica", (r) => r.inFlight);
    // The replica engine's own figures, as last read from its metrics (fleet `metrics` config); absent while unknown.
    const signal = (name: string, help: string, value: (r: ReplicaState) => number | null | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ["model", "replica"],
        registers,
        collect() {
          this.reset();
          for (const r of replicas()) {
            const v = value(r.state);
            if (typeof v === "number") this.set({ model: r.model, replica: r.replica }, v);
          }
        },
      });
    signal("sputnik_replica_engine_waiting", "Requests waiting in a fleet replica's own queue, as its engine last reported", (r) => r.signals?.waiting);
    signal("sputnik_replica_engine_running", "Requests a fleet replica's engine is running, as it last reported", (r) => r.signals?.running);
    signal("sputnik_replica_engine_kv_usage", "Share of a fleet replica's KV cache in use (0-1), as its engine last reported", (r) => r.signals?.kvUsage);
    signal("sputnik_replica_engine_reading_age_seconds", "Age of the last good reading of a fleet replica's engine metrics", (r) =>
      r.signals?.ageMs === null || r.signals?.ageMs === undefined ? null : r.signals.ageMs / 1000,
    );
    new Gauge({
      name: "sputnik_replica_breaker_state",
      help: "A fleet replica's circuit breaker: 1 for its current state (closed, open, half_open)",
      labelNames: ["model", "replica", "state"],
      registers,
      collect() {
        this.reset();
        for (const r of replicas()) for (const state of ["closed", "open", "half_open"]) this.set({ model: r.model, replica: r.replica, state }, r.state.breaker === state ? 1 : 0);
      },
    });
    // Pre-aggregated by the engine (it counts; this formats), so a custom collector, not a prom-client Histogram.
    const name = "sputnik_fleet_routing_seconds";
    const help = "Time a fleet engine took to route a request: from reaching the engine to its upstream request leaving (routing-state read, choice, lease claim)";
    for (const registry of registers) {
      registry.registerMetric({
        name,
        help,
        type: "histogram",
        get: async () => ({
          name,
          help,
          type: "histogram",
          aggregator: "sum",
          values: read().flatMap(({ model, routingSeconds: h }) =>
            h
              ? [
                  ...h.bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { model, le }, value: h.counts[i]! })),
                  { metricName: `${name}_bucket`, labels: { model, le: "+Inf" }, value: h.count },
                  { metricName: `${name}_sum`, labels: { model }, value: h.sum },
                  { metricName: `${name}_count`, labels: { model }, value: h.count },
                ]
              : [],
          ),
        }),
      } as unknown as Parameters<Registry["registerMetric"]>[0]);
    }
    for (const [name, help, value] of [
      ["sputnik_replica_requests_total", "Attempts sent to a fleet replica (a failed-over request counts once per replica tried)", (r: ReplicaState) => r.requests],
      ["sputnik_replica_failures_total", "Attempts that failed on a fleet replica (no answer, timeout before headers, 5xx, broken stream)", (r: ReplicaState) => r.failures],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ["model", "replica"],
        registers,
        collect() {
          this.reset();
          for (const r of replicas()) this.inc({ model: r.model, replica: r.replica }, value(r.state));
        },
      });
    }
  }

  observeCompletion(entry: CompletionObservation): void {
    if (entry.engine === "none") return;
    const labels = { model: entry.model };
    this.completions.inc({ model: entry.model, status: String(entry.status) });
    if (entry.ttftMs !== null && entry.status < 400) this.ttft.observe(labels, entry.ttftMs / 1000);
    const usage = entry.usage;
    this.promptTokens.inc(labels, usage.prompt_tokens);
    this.completionTokens.inc(labels, usage.completion_tokens);
    this.cacheHitTokens.inc(labels, usage.prompt_cache_hit_tokens);
    this.cacheMissTokens.inc(labels, usage.prompt_cache_miss_tokens);
    const totals = this.cacheTotals.get(entry.model) ?? { hit: 0, miss: 0 };
    totals.hit += usage.prompt_cache_hit_tokens;
    totals.miss += usage.prompt_cache_miss_tokens;
    this.cacheTotals.set(entry.model, totals);
    const decodeMs = entry.totalMs - (entry.ttftMs ?? entry.totalMs);
    // The first token arrives at TTFT; the rate is over the tokens after it.
    if (usage.completion_tokens > 1 && decodeMs > 0) {
      this.tokensPerSecond.observe(labels, (usage.completion_tokens - 1) / (decodeMs / 1000));
    }
  }
}

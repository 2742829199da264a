import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { CacheReportTracker } from "../remote/cacheReporting.ts";
import { checkAgainstContext } from "../remote/contextCheck.ts";
import { upstreamEmbeddings } from "../remote/embeddings.ts";
import { promptTokenBound } from "../remote/remoteEngine.ts";
import { UpstreamClient, UpstreamError } from "../remote/upstream.ts";
import {
  EngineError,
  type EmbeddingRequest,
  type Embeddings,
  type Engine,
  type EngineActivity,
  type EngineEvent,
  type EngineHealth,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
  type ReplicaSignals,
  type ReplicaState,
} from "../types.ts";
import type { FleetModelConfig } from "./config.ts";
import { DnsReplicas, type ResolvedReplica, type Resolver } from "./dnsReplicas.ts";
import { LatencyHistogram } from "./latency.ts";
import { effectiveLoad, readLoadSignals, type LoadSignals } from "./loadSignals.ts";
import { parsePrometheusText } from "./promText.ts";
import { ReplicaHealth } from "./replicaHealth.ts";
import { RetryBudget } from "./retryBudget.ts";
import { affinityKey, chooseReplica, prefixHashes, type Candidate } from "./routing.ts";
import { MemoryRoutingState, RedisRoutingState, type RoutingState } from "./routingState.ts";

interface Replica {
  /** Shared between gateways (Redis keys, hashing): the URL, which every gateway's config names alike. */
  id: string;
  name: string;
  maxConcurrency: number;
  weight: number;
  client: UpstreamClient;
  health: ReplicaHealth;
  inFlight: number;
  requests: number;
  failures: number;
  probing: Promise<void> | null;
  halfOpenTimer: NodeJS.Timeout | null;
  /** The last good reading of its engine's metrics, with this gateway's in-flight count at that moment. */
  reading: { signals: LoadSignals; at: number; ownInFlightAtRead: number } | null;
  readError: string | null;
  scraping: Promise<void> | null;
  cache: CacheReportTracker;
}

/**
 * Models served by several OpenAI-compatible replicas (vLLM, SGLang, llama-server, Sputnik
 * nodes), each reached through an UpstreamClient. Per model: active probes and a circuit breaker
 * per replica (src/engines/fleet/replicaHealth.ts), routing by policy (src/engines/fleet/routing.ts)
 * over a routing state (affinity keys, the prefix index, in-flight leases) that is shared through
 * Redis when there is one, load signals read from each replica's own metrics where the model's
 * `metrics` is configured (src/engines/fleet/loadSignals.ts), and failover to another replica for
 * a request that has not yet yielded an event.
 */
export class FleetEngine implements Engine {
  readonly kind = "fleet";
  private readonly fleets = new Map<string, FleetModel>();

  constructor(
    models: FleetModelConfig[],
    private readonly options: { redis?: Redis | null; logger?: Logger | undefined; resolve?: Resolver } = {},
  ) {
    for (const config of models) {
      const index = { prefixEntries: config.affinity.prefixEntries, prefixTtlMs: config.affinity.ttlMs };
      const state: RoutingState = options.redis
        ? new RedisRoutingState(options.redis, { prefix: config.stateKeyPrefix, leaseMs: config.leaseMs, logger: options.logger, ...index })
        : new MemoryRoutingState(Date.now, index);
      this.fleets.set(config.id, new FleetModel(config, state, options.logger, options.resolve));
    }
  }

  /** Resolves once every fleet model with a `dns` name has had its first answer (or failure). */
  async ready(): Promise<void> {
    await Promise.all([...this.fleets.values()].map((f) => f.ready));
  }

  models(): ModelInfo[] {
    return [...this.fleets.values()].map((f) => f.info);
  }

  /** A max_tokens that cannot fit the model's configured context is refused before limits and admission. */
  inspect(request: GenerationRequest): void {
    checkAgainstContext(request, this.fleet(request.model).info.contextLength);
  }

  /** The upstreams' tokenizers are not here: the prompt size is the same upper bound as the remote engine's. */
  prepare(request: GenerationRequest): PreparedRequest {
    const info = this.fleet(request.model).info;
    checkAgainstContext(request, info.contextLength);
    return { model: info, promptTokens: promptTokenBound(request.messages, request.tools, request.completion), exact: false, room: undefined };
  }

  generate(request: GenerationRequest): AsyncIterable<EngineEvent> {
    return this.fleet(request.model).generate(request);
  }

  /** Passed through to a replica in rotation (models configured with `embeddings: true`). */
  embed(request: EmbeddingRequest): Promise<Embeddings> {
    return this.fleet(request.model).embed(request);
  }

  /**
   * The sum of `maxConcurrency` over the replicas in rotation. With none in rotation it is the
   * configured sum: requests then fail fast with 503 rather than wait, and an admission queue that
   * reads its capacity once is not left at zero after the outage.
   */
  capacity(model: string): number | undefined {
    const fleet = this.fleets.get(model);
    // No replica at all (a `dns` name that has not resolved yet): no queue to wait in, so
    // requests fail fast with 503 rather than wait for a capacity of 0.
    if (!fleet || fleet.replicas.length === 0) return undefined;
    const healthy = fleet.replicas.filter((r) => r.health.inRotation()).reduce((sum, r) => sum + r.maxConcurrency, 0);
    return healthy > 0 ? healthy : fleet.replicas.reduce((sum, r) => sum + r.maxConcurrency, 0);
  }

  stats(): EngineActivity[] {
    return [...this.fleets.values()].map((f) => ({
      model: f.info.id,
      batches: 0,
      batchTokens: 0,
      sharedBatches: 0,
      rereadsCompleted: 0,
      rereadsAbandoned: 0,
      rereadTokens: 0,
      promptTokenizations: 0,
      replicas: f.replicaStates(),
      routingSeconds: f.routing.read(),
    }));
  }

  /** From the probes and breakers this gateway keeps (probing every interval): a model is up while one of its replicas is in rotation. */
  async health(): Promise<EngineHealth> {
    const parts = [...this.fleets.values()].map((f) => {
      const up = f.replicas.filter((r) => r.health.inRotation()).length;
      return { ok: up > 0, detail: `${f.info.id}: ${up}/${f.replicas.length} replicas in rotation` };
    });
    return { ok: parts.every((p) => p.ok), detail: parts.map((p) => p.detail).join("; ") || "no fleet models" };
  }

  async close(): Promise<void> {
    await Promise.all([...this.fleets.values()].map((f) => f.close()));
    const redis = this.options.redis;
    if (redis) await redis.quit().catch(() => redis.disconnect());
  }

  private fleet(id: string): FleetModel {
    const fleet = this.fleets.get(id);
    if (!fleet) throw new EngineError(`The model '${id}' does not exist`, 404, "model_not_found", "model");
    return fleet;
  }
}

class FleetModel {
  /** The replicas in rotation's reach now: the configured ones, then those `dns` resolves to (replaced as it changes). */
  replicas: Replica[];
  readonly routing = new LatencyHistogram();
  readonly ready: Promise<void>;
  private readonly fixed: Replica[];
  private readonly dns: DnsReplicas | null = null;
  private readonly budget: RetryBudget;
  private readonly prober: NodeJS.Timeout;
  private readonly scraper: NodeJS.Timeout | null = null;
  private turn = 0;
  private closed = false;

  constructor(
    private readonly config: FleetModelConfig,
    private readonly state: RoutingState,
    private readonly logger: Logger | undefined,
    resolve?: Resolver,
  ) {
    this.fixed = config.replicas.map((r, index) => this.replica({ ...r, name: r.name ?? `${config.id}#${index}` }));
    this.replicas = [...this.fixed];
    if (config.dns) {
      this.dns = new DnsReplicas(config.dns, (found) => this.resolved(found), resolve, logger);
      this.ready = this.dns.start();
    } else {
      this.ready = Promise.resolve();
    }
    this.budget = new RetryBudget({ ratio: config.failover.retryRatio, minRetries: config.failover.minRetries, windowMs: config.failover.windowMs });
    for (const replica of this.replicas) void this.probe(replica);
    this.prober = setInterval(() => {
      for (const replica of this.replicas) void this.probe(replica);
    }, config.health.probeIntervalMs);
    this.prober.unref();
    const metrics = config.metrics;
    if (metrics) {
      for (const replica of this.replicas) void this.readMetrics(replica);
      this.scraper = setInterval(() => {
        for (const replica of this.replicas) void this.readMetrics(replica);
      }, metrics.intervalMs);
      this.scraper.unref();
    }
  }

  private replica(r: ResolvedReplica): Replica {
    const config = this.config;
    return {
      id: r.baseUrl,
      name: r.name,
      maxConcurrency: r.maxConcurrency,
      weight: r.weight,
      client: new UpstreamClient({
        model: config.id,
        baseUrl: r.baseUrl,
        apiKey: r.apiKey,
        upstreamModel: config.upstreamModel ?? config.id,
        timeoutMs: config.timeoutMs,
        headersTimeoutMs: config.health.headersTimeoutMs,
      }),
      health: new ReplicaHealth(config.health),
      inFlight: 0,
      requests: 0,
      failures: 0,
      probing: null,
      halfOpenTimer: null,
      reading: null,
      readError: null,
      scraping: null,
      cache: new CacheReportTracker(),
    };
  }

  /**
   * A new answer from DNS: addresses still there keep their replica (health, counts, readings),
   * new ones are probed before they take traffic, gone ones leave (their running requests finish).
   */
  private resolved(found: ResolvedReplica[]): void {
    if (this.closed) return;
    const current = new Map(this.replicas.map((r) => [r.id, r]));
    const fixed = new Set(this.fixed.map((r) => r.id));
    const next = [...this.fixed];
    for (const spec of found) {
      if (fixed.has(spec.baseUrl)) continue;
      const known = current.get(spec.baseUrl);
      if (known) {
        next.push(known);
        continue;
      }
      const added = this.replica(spec);
      next.push(added);
      void this.probe(added);
      if (this.config.metrics) void this.readMetrics(added);
    }
    const kept = new Set(next);
    for (const gone of this.replicas) if (!kept.has(gone) && gone.halfOpenTimer) clearTimeout(gone.halfOpenTimer);
    this.replicas = next;
  }

  /** Whether its upstreams report prompt-cache hits is known once answers came back (see CacheReportTracker). */
  get info(): ModelInfo {
    const states = this.replicas.map((r) => r.cache.state).filter((c) => c !== undefined);
    const cacheReporting = states.length === 0 ? undefined : states.every((c) => c === states[0]) ? states[0] : "partial";
    return {
      id: this.config.id,
      engine: "fleet",
      ownedBy: "fleet",
      reasoning: this.config.reasoning,
      ...(this.config.contextLength !== undefined ? { contextLength: this.config.contextLength } : {}),
      ...(cacheReporting ? { cacheReporting } : {}),
      ...(this.config.embeddings ? { embedding: {} } : {}),
    };
  }

  /**
   * Embeddings from any replica in rotation (no affinity: there is no prefix to reuse), by the
   * model's policy over in-flight loads, failing over like a completion before its first event.
   */
  async embed(request: EmbeddingRequest): Promise<Embeddings> {
    if (!this.config.embeddings) throw new EngineError(`The model '${this.config.id}' does not create embeddings.`, 400, "model_not_embedding", "model");
    this.budget.request();
    const tried = new Set<Replica>();
    let lastError: unknown = null;
    for (let attempt = 1; ; attempt++) {
      if (request.signal?.aborted) throw new EngineError("The request was cancelled", 499, "cancelled");
      const replica = await this.pick(null, [], false, tried);
      if (!replica) throw lastError ?? new EngineError(`No replica of '${this.config.id}' is available now`, 503, "no_healthy_replica");
      tried.add(replica);
      replica.inFlight++;
      replica.requests++;
      try {
        const answer = await upstreamEmbeddings(replica.client.target, request);
        replica.health.recordSuccess();
        return answer;
      } catch (error) {
        const verdict = assess(error, false);
        if (verdict.replicaFault) this.failed(replica, error);
        else if (verdict.alive) replica.health.recordSuccess();
        if (!verdict.retryable || request.signal?.aborted || attempt >= this.config.failover.maxAttempts || !this.budget.tryRetry()) throw error;
        lastError = error;
        this.logger?.info({ model: this.config.id, replica: replica.name, attempt, err: error }, "retrying embeddings on another replica");
      } finally {
        replica.inFlight--;
      }
    }
  }

  async *generate(request: GenerationRequest): AsyncGenerator<EngineEvent> {
    const started = performance.now();
    this.budget.request();
    const affinity = this.config.routing === "affinity";
    const key = affinity ? affinityKey(request) : null;
    const prefixes = affinity && this.config.affinity.prefixEntries > 0 ? prefixHashes(request.messages, this.config.affinity.prefixDepth) : [];
    const tried = new Set<Replica>();
    let lastError: unknown = null;
    for (let attempt = 1; ; attempt++) {
      if (request.signal?.aborted) throw new EngineError("The request was cancelled", 499, "cancelled");
      const replica = await this.pick(key, prefixes, request.routingKey !== undefined, tried);
      if (!replica) {
        throw lastError ?? new EngineError(`No replica of '${this.config.id}' is available now`, 503, "no_healthy_replica");
      }
      tried.add(replica);
      // Recorded (affinity, prefix index, in-flight lease) while the upstream request goes out,
      // not before it: one shared-state round trip per request on the way, not two. Nothing
      // reads it sooner than this request's next turn, which comes after its answer; another
      // gateway's routing may miss this one request in the loads for that round trip.
      const lease = this.state.claim(this.config.id, key, replica.id, this.config.affinity.ttlMs, prefixes);
      replica.inFlight++;
      replica.requests++;
      // Routing: from the request reaching the engine to its upstream request leaving (the
      // routing-state read and the choice). A retry's time is failover, not routing.
      if (attempt === 1) this.routing.observe((performance.now() - started) / 1000);
      let yielded = false;
      try {
        const hooks = { onHeaders: () => replica.health.recordSuccess(), onUsage: (reported: boolean) => replica.cache.note(reported) };
        for await (const event of replica.client.stream(request, hooks)) {
          yielded = true;
          yield event;
        }
        return;
      } catch (error) {
        const verdict = assess(error, yielded);
        if (verdict.replicaFault) this.failed(replica, error);
        else if (verdict.alive) replica.health.recordSuccess();
        // Already streamed: the client has part of an answer; it ends with an error event and the
        // pipeline bills what was delivered (the usage event the client sent before failing).
        if (yielded) {
          yield { type: "error", error: error instanceof EngineError ? error : new EngineError(`Upstream failed: ${(error as Error).message}`, 502, "upstream_error") };
          return;
        }
        if (!verdict.retryable || request.signal?.aborted || attempt >= this.config.failover.maxAttempts || !this.budget.tryRetry()) throw error;
        lastError = error;
        this.logger?.info({ model: this.config.id, replica: replica.name, attempt, err: error }, "retrying on another replica");
      } finally {
        replica.inFlight--;
        void lease.then((held) => held.release(), () => undefined);
      }
    }
  }

  /** The replica for the next attempt: in rotation, not tried yet, by the model's policy. */
  private async pick(key: string | null, prefixes: string[], explicitKey: boolean, tried: Set<Replica>): Promise<Replica | null> {
    const open = this.replicas.filter((r) => !tried.has(r) && r.health.inRotation());
    if (open.length === 0) return null;
    const { remembered, loads, prefix } = await this.state.read(
      this.config.id,
      key,
      open.map((r) => r.id),
      prefixes,
    );
    const candidates: Candidate[] = open.map((r, i) => {
      const reading = this.freshReading(r);
      return {
        id: r.id,
        weight: r.weight,
        maxConcurrency: r.maxConcurrency,
        load: effectiveLoad(Math.max(loads[i] ?? 0, r.inFlight), r.inFlight, reading),
        kvUsage: reading?.signals.kvUsage ?? null,
      };
    });
    const choice = chooseReplica(this.config.routing, candidates, {
      key: key ?? "",
      remembered,
      prefix: prefix?.replica ?? null,
      explicitKey,
      turn: this.turn++,
      loadFactor: this.config.affinity.loadFactor,
      loadSlack: this.config.affinity.loadSlack,
      ...(this.config.metrics ? { maxKvUsage: this.config.metrics.maxKvUsage } : {}),
    });
    return choice ? open.find((r) => r.id === choice.candidate.id)! : null;
  }

  private failed(replica: Replica, error: unknown): void {
    replica.failures++;
    const wasClosed = replica.health.breaker === "closed";
    replica.health.recordFailure((error as Error).message);
    if (wasClosed && replica.health.breaker !== "closed") {
      this.logger?.warn({ model: this.config.id, replica: replica.name, err: error }, "replica breaker opened: out of rotation");
      // The half-open trial: a probe as soon as the cool-down ends.
      if (replica.halfOpenTimer) clearTimeout(replica.halfOpenTimer);
      replica.halfOpenTimer = setTimeout(() => void this.probe(replica), this.config.health.cooldownMs + 1);
      replica.halfOpenTimer.unref();
    }
    // A failure is also checked at once: a replica whose probe fails too leaves rotation now,
    // not after N more users' requests.
    void this.probe(replica);
  }

  private probe(replica: Replica): Promise<void> {
    if (this.closed) return Promise.resolve();
    replica.probing ??= (async () => {
      const result = await replica.client.probe(this.config.health.probeTimeoutMs, this.config.health.probePath);
      const before = replica.health.inRotation();
      replica.health.recordProbe(result.ok, result.detail);
      const after = replica.health.inRotation();
      if (before !== after) {
        this.logger?.[after ? "info" : "warn"]({ model: this.config.id, replica: replica.name, probe: result.detail }, after ? "replica back in rotation" : "replica out of rotation");
      }
    })().finally(() => (replica.probing = null));
    return replica.probing;
  }

  /** The replica's last reading when it is recent enough to route on (`metrics.maxAgeMs`). */
  private freshReading(replica: Replica): Replica["reading"] {
    const maxAge = this.config.metrics?.maxAgeMs;
    if (maxAge === undefined || !replica.reading) return null;
    return performance.now() - replica.reading.at <= maxAge ? replica.reading : null;
  }

  /** One read of the replica's metrics at a time; a failed read keeps the last good one (which ages out of routing). */
  private readMetrics(replica: Replica): Promise<void> {
    const metrics = this.config.metrics;
    if (this.closed || !metrics) return Promise.resolve();
    replica.scraping ??= (async () => {
      try {
        const text = await replica.client.metrics(metrics.path, metrics.timeoutMs, metrics.token);
        const signals = readLoadSignals(parsePrometheusText(text), this.config.upstreamModel ?? this.config.id);
        if (!signals) throw new Error("no known load gauges in the metrics");
        replica.reading = { signals, at: performance.now(), ownInFlightAtRead: replica.inFlight };
        replica.readError = null;
      } catch (error) {
        const why = (error as Error).message;
        if (replica.readError !== why) this.logger?.debug({ model: this.config.id, replica: replica.name, err: error }, "replica metrics unreadable");
        replica.readError = why;
      }
    })().finally(() => (replica.scraping = null));
    return replica.scraping;
  }

  private signalsOf(replica: Replica): ReplicaSignals {
    const reading = replica.reading;
    return {
      source: reading?.signals.source ?? null,
      waiting: reading?.signals.waiting ?? null,
      running: reading?.signals.running ?? null,
      kvUsage: reading?.signals.kvUsage ?? null,
      ageMs: reading ? Math.round(performance.now() - reading.at) : null,
      error: replica.readError,
    };
  }

  replicaStates(): ReplicaState[] {
    return this.replicas.map((r) => ({
      name: r.name,
      probe: r.health.probe,
      breaker: r.health.breaker,
      inRotation: r.health.inRotation(),
      inFlight: r.inFlight,
      maxConcurrency: r.maxConcurrency,
      consecutiveFailures: r.health.consecutiveFailures,
      requests: r.requests,
      failures: r.failures,
      ...(this.config.metrics ? { signals: this.signalsOf(r) } : {}),
      ...(r.cache.state ? { cacheReporting: r.cache.state } : {}),
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dns?.stop();
    clearInterval(this.prober);
    if (this.scraper) clearInterval(this.scraper);
    for (const r of this.replicas) if (r.halfOpenTimer) clearTimeout(r.halfOpenTimer);
    await Promise.all(this.replicas.flatMap((r) => [r.probing, r.scraping]));
    await this.state.close();
  }
}

/**
 * What a failed attempt says about its replica and whether another may take the request:
 * no answer, a timeout before headers, 502/503/504 and a stream that broke before its first event
 * are the replica's and retried; other 5xx are the replica's but not retried (the request may be
 * what breaks it); 4xx are the client's (the replica is alive); cancellation is nobody's.
 */
export function assess(error: unknown, yielded: boolean): { replicaFault: boolean; retryable: boolean; alive: boolean } {
  if (!(error instanceof UpstreamError)) return { replicaFault: false, retryable: false, alive: false };
  switch (error.failure) {
    case "cancelled":
      return { replicaFault: false, retryable: false, alive: false };
    case "connect":
    case "timeout":
      return { replicaFault: true, retryable: !yielded, alive: false };
    case "stream":
      return { replicaFault: true, retryable: !yielded, alive: false };
    case "status": {
      const status = error.upstreamStatus ?? 0;
      if (status >= 500) return { replicaFault: true, retryable: !yielded && (status === 502 || status === 503 || status === 504), alive: false };
      return { replicaFault: false, retryable: false, alive: true };
    }
  }
}

import { ServiceError } from "../errors.ts";
import { MemoryAdmission, type AdmissionBackend, type AdmissionContext } from "./admissionBackend.ts";
import type { QueueSettings, QueueUpdate } from "./admissionQueue.ts";
import { cachedAttackMode, limitsInForce } from "./attackMode.ts";
import { ConcurrencyCaps } from "./concurrencyCaps.ts";
import type { LimitsConfig } from "./config.ts";
import { flowOf, type Identity } from "./identity.ts";
import { RateLimits, type IpBucket, type RateVerdict } from "./rateLimits.ts";
import { checkCompletionTexts, checkMessages } from "./requestHygiene.ts";
import type { BucketStore } from "./tokenBucket.ts";

/** Where refusals and waits are reported (the metrics registry). */
export interface LimitsObserver {
  rejected(reason: string): void;
  queueWait(model: string, seconds: number): void;
}

export interface LimitsDeps {
  config: LimitsConfig;
  /** Token-bucket balances: in memory, or in Redis to share them between processes. */
  store: BucketStore;
  /** Requests a model runs at once; undefined for a model that does not exist (the router answers 404). */
  capacityOf(model: string): number | undefined;
  /** A plan's queue weight (billing's `concurrencyWeight`); 1 when not given. */
  weightOf?(planId: string | null): number | Promise<number>;
  /** Whether an admin switched attack mode on; asked at most once a second. */
  attackMode?(): Promise<boolean>;
  observer?: LimitsObserver;
  /**
   * Where queues and caps live; in memory (this process) when not given. Given the context and
   * the in-memory backend (for a backend that falls back to it, as RedisAdmission does).
   */
  admission?(context: AdmissionContext, memory: MemoryAdmission): AdmissionBackend;
}

export interface CompletionRequest {
  identity: Identity;
  model: string;
  /** Aborted when the client leaves: a waiting request leaves the queue at once. */
  signal?: AbortSignal;
  /** Place in line, every `queue.keepAliveMs` while waiting (`CompletionPass.position()` gives the first). */
  onQueue?: (update: QueueUpdate) => void;
}

/** A completion's admission: its place (waiting or running) and its share of every limit. */
export interface CompletionPass {
  /** x-ratelimit-* headers to send with the response. */
  headers: Record<string, string>;
  /** True when the request waits in line: `ready` resolves once it may run. */
  queued: boolean;
  /** Rejects with ServiceError unavailable (queue_timeout, shutting_down) or the signal's reason. */
  ready: Promise<void>;
  waitedMs(): number;
  /** The place in line now; null when running. */
  position(): QueueUpdate | null;
  /**
   * Frees the request's place and concurrency and charges its tokens. Idempotent; call it however
   * the request ended. `completed: false` (cut short) keeps it out of the service-time estimate.
   */
  finish(outcome?: { totalTokens?: number; completed?: boolean }): void;
}

/**
 * Every limit in one place, for routes to call:
 *   - `admitCompletion` before generating (rate limits → concurrency caps → fair admission queue),
 *   - `consumeIp("auth-ip", ip)` on login, sign-up and code redemption,
 *   - `checkMessages` on a chat body.
 * Each refusal is a ServiceError (rate_limited or unavailable, with retryAfterS) thrown before
 * anything is written. Whom a request counts against is `identityOf(actor, ip)` (./identity.ts).
 */
export class Limits {
  readonly rates: RateLimits;
  /** This process's concurrency caps (all of them without Redis; the fallback with it). */
  readonly caps: ConcurrencyCaps;
  private readonly admission: AdmissionBackend;
  private readonly attackMode: () => Promise<boolean>;
  private attackNow = false;
  private draining = false;
  private readonly weights = new Map<string | null, { weight: number; at: number }>();

  constructor(private readonly deps: LimitsDeps) {
    const rejected = (reason: string) => deps.observer?.rejected(reason);
    this.rates = new RateLimits(deps.store, rejected);
    this.caps = new ConcurrencyCaps(rejected);
    const context: AdmissionContext = {
      settingsOf: (model) => this.queueSettings(model),
      waited: (model, ms) => deps.observer?.queueWait(model, ms / 1000),
      rejected,
    };
    const memory = new MemoryAdmission(context, this.caps);
    this.admission = deps.admission ? deps.admission(context, memory) : memory;
    const lookup = deps.attackMode ?? (async () => false);
    const cached = cachedAttackMode(lookup);
    this.attackMode = async () => (this.attackNow = await cached());
  }

  /** The limits as configured (attack mode not applied). */
  get config(): LimitsConfig {
    return this.deps.config;
  }

  /** Counts a refusal decided outside this class (connection caps, attack-mode gate). */
  noteRejection(reason: string): void {
    this.deps.observer?.rejected(reason);
  }

  /** The limits now in force (tightened while attack mode is on). */
  async inForce(): Promise<LimitsConfig> {
    return limitsInForce(this.deps.config, await this.attackMode());
  }

  async isAttackMode(): Promise<boolean> {
    return this.attackMode();
  }

  /** One attempt from `ip` against a per-IP bucket; throws ServiceError rate_limited when over the rate. */
  async consumeIp(bucket: IpBucket, ip: string): Promise<RateVerdict> {
    return this.rates.consumeIp(bucket, ip, await this.inForce());
  }

  /** Throws ServiceError invalid_request naming the message when a chat body is over the configured bounds. */
  checkMessages(messages: ReadonlyArray<{ content?: string | null }>): void {
    checkMessages(messages, this.deps.config, (reason) => this.deps.observer?.rejected(reason));
  }

  /** The same bound on a raw completion's `prompt` and `suffix` (/v1/completions). */
  checkCompletionTexts(texts: { prompt: string; suffix?: string }): void {
    checkCompletionTexts(texts, this.deps.config, (reason) => this.deps.observer?.rejected(reason));
  }

  async admitCompletion(request: CompletionRequest): Promise<CompletionPass> {
    const limits = await this.inForce();
    const { identity } = request;
    const verdict = await this.rates.admitCompletion(identity, limits);
    if (this.draining) throw new ServiceError("unavailable", "The server is shutting down. Please retry shortly.", { code: "shutting_down", retryAfterS: 5 });
    const serviceMs = this.admission.serviceEstimateMs(request.model);
    // Only promises are awaited: the in-memory backend answers at once, in the order it always did.
    const caps = this.admission.acquireCaps(
      identity,
      { perIp: limits.maxConcurrentPerIp, perKey: limits.maxConcurrentPerKey },
      (serviceMs ?? 1000) / 1000,
    );
    const releaseCaps = caps instanceof Promise ? await caps : caps;
    let slot;
    try {
      const weight = serviceMs !== undefined ? await this.weightOf(identity.planId) : 1;
      const entered = this.admission.enter(request.model, { flow: flowOf(identity), weight, signal: request.signal, onUpdate: request.onQueue });
      slot = entered instanceof Promise ? await entered : entered;
    } catch (error) {
      releaseCaps();
      throw error;
    }
    let finished = false;
    return {
      headers: verdict.headers,
      queued: slot?.queued ?? false,
      ready: slot?.ready ?? Promise.resolve(),
      waitedMs: () => slot?.waitedMs() ?? 0,
      position: () => slot?.position() ?? null,
      finish: (outcome = {}) => {
        if (finished) return;
        finished = true;
        slot?.release(outcome.completed ?? true);
        releaseCaps();
        if (outcome.totalTokens) {
          // Charged after the fact; a failing store (Redis away) must not fail the finished request.
          this.rates.chargeTokens(identity, limits, outcome.totalTokens).catch(() => undefined);
        }
      },
    };
  }

  /** Queue figures per model, for /metrics and /health. */
  load(): Array<{ model: string; queued: number; running: number; capacity: number; turnEstimateMs: number }> {
    return this.admission.load().map((q) => ({
      model: q.model,
      queued: q.queued,
      running: q.running,
      capacity: this.deps.capacityOf(q.model) ?? 0,
      turnEstimateMs: q.turnEstimateMs,
    }));
  }

  /**
   * Refuses every waiting request and any new one (503 shutting_down), so a shutdown is not held
   * up by the queue. Running requests finish.
   */
  drain(): void {
    this.draining = true;
    this.admission.drain();
  }

  async close(): Promise<void> {
    this.drain();
    await this.admission.close();
    await this.deps.store.close();
  }

  /** A model's queue settings now (attack mode applied); undefined for a model that does not exist. */
  private queueSettings(model: string): QueueSettings | undefined {
    const capacity = this.deps.capacityOf(model);
    if (capacity === undefined) return undefined;
    const limits = limitsInForce(this.deps.config, this.attackNow);
    return {
      capacity,
      maxLength: limits.queue.maxLength,
      maxPerUser: limits.queue.maxPerUser,
      maxWaitMs: limits.queue.maxWaitMs,
      assumedServiceMs: limits.queue.assumedServiceMs,
      updateEveryMs: limits.queue.keepAliveMs,
    };
  }

  /** Plans change rarely and are read on every request: each weight is kept for 10 s. */
  private async weightOf(planId: string | null): Promise<number> {
    if (!this.deps.weightOf) return 1;
    const cached = this.weights.get(planId);
    if (cached && performance.now() - cached.at < 10_000) return cached.weight;
    let weight = 1;
    try {
      const found = await this.deps.weightOf(planId);
      if (Number.isFinite(found) && found > 0) weight = found;
    } catch {
      // An unreadable plan schedules like the default one rather than failing the request.
    }
    if (this.weights.size > 1000) this.weights.clear();
    this.weights.set(planId, { weight, at: performance.now() });
    return weight;
  }
}

import { AdmissionQueue, type EnterOptions, type QueueSettings, type Slot } from "./admissionQueue.ts";
import type { ConcurrencyCaps } from "./concurrencyCaps.ts";
import type { Identity } from "./identity.ts";

/** What a backend needs from `Limits`: each model's queue settings and where to report. */
export interface AdmissionContext {
  /** The settings in force for `model` now; undefined for a model that does not exist (not queued). */
  settingsOf(model: string): QueueSettings | undefined;
  /** A request left the queue for the engine after waiting this long (0 when admitted at once). */
  waited(model: string, ms: number): void;
  /** A refusal (queue_full, concurrency_ip, …), for the metrics. */
  rejected(reason: string): void;
}

export interface ModelLoad {
  model: string;
  queued: number;
  running: number;
  turnEstimateMs: number;
}

export interface CapLimits {
  perIp: number;
  perKey: number;
}

/**
 * Where completions wait for and hold their places: the fair admission queue per model and the
 * concurrency caps per IP and per key. In memory for one process (`MemoryAdmission`), or in Redis
 * for every process sharing it (`RedisAdmission`). A method may answer synchronously; `Limits`
 * awaits only promises, so the in-memory path keeps its exact order of events.
 */
export interface AdmissionBackend {
  /** The typical service time of `model` (for Retry-After of cap refusals); undefined when not queued. */
  serviceEstimateMs(model: string): number | undefined;
  /**
   * A place in `model`'s admission (undefined for a model that is not queued). Throws (or rejects
   * with) ServiceError rate_limited/unavailable with retryAfterS when the request cannot queue.
   */
  enter(model: string, options: EnterOptions): Slot | undefined | Promise<Slot | undefined>;
  /** One place under both caps (0 = no cap); its release may be called more than once. Throws ServiceError rate_limited. */
  acquireCaps(identity: Identity, caps: CapLimits, retryAfterS: number): (() => void) | Promise<() => void>;
  /** Figures per model as this process sees them (its own waiting and running requests). */
  load(): ModelLoad[];
  /** Refuses every waiting request (503 shutting_down) and any new one. */
  drain(): void;
  close(): Promise<void>;
}

/** One process's admission: an AdmissionQueue per model and the process's ConcurrencyCaps. */
export class MemoryAdmission implements AdmissionBackend {
  private readonly queues = new Map<string, AdmissionQueue>();

  constructor(
    private readonly context: AdmissionContext,
    readonly caps: ConcurrencyCaps,
  ) {}

  serviceEstimateMs(model: string): number | undefined {
    return this.queueFor(model)?.serviceEstimateMs;
  }

  enter(model: string, options: EnterOptions): Slot | undefined {
    return this.queueFor(model)?.enter(options);
  }

  acquireCaps(identity: Identity, caps: CapLimits, retryAfterS: number): () => void {
    return this.caps.acquire(identity, caps, retryAfterS);
  }

  load(): ModelLoad[] {
    return [...this.queues.values()].map((q) => ({ model: q.model, queued: q.queuedCount, running: q.runningCount, turnEstimateMs: q.turnEstimateMs }));
  }

  drain(): void {
    for (const queue of this.queues.values()) queue.close();
  }

  async close(): Promise<void> {
    this.drain();
  }

  private queueFor(model: string): AdmissionQueue | undefined {
    let queue = this.queues.get(model);
    if (queue) return queue;
    const initial = this.context.settingsOf(model);
    if (initial === undefined) return undefined;
    // Settings, capacity included, are read on every use: a fleet's capacity follows its replicas'
    // health (the sum over those in rotation), and the queue hands out places as it grows.
    queue = new AdmissionQueue(
      model,
      () => this.context.settingsOf(model) ?? initial,
      {
        waited: (m, ms) => this.context.waited(m, ms),
        rejected: (_m, reason) => this.context.rejected(reason),
      },
    );
    this.queues.set(model, queue);
    return queue;
  }
}

import { ServiceError } from "../errors.ts";
import { FairQueue, type FairEntry } from "./fairQueue.ts";

export interface QueueSettings {
  /** Requests this model runs at once (its sequences; a remote model's configured concurrency). */
  capacity: number;
  maxLength: number;
  maxPerUser: number;
  /**
   * Longest estimated wait a request is admitted with. Estimates can turn out short when the
   * load changes, so a waiting request is given up only after twice this (queue_timeout).
   */
  maxWaitMs: number;
  /** Service time assumed before any request was measured. */
  assumedServiceMs: number;
  /** How often waiting requests hear their place in line. */
  updateEveryMs: number;
}

export interface QueueUpdate {
  /** 1 = next to run. */
  position: number;
  queueLength: number;
  estimatedWaitS: number;
}

export type QueueRejection = "queue_full" | "queue_user_full" | "queue_wait_too_long" | "queue_timeout";

export interface QueueObserver {
  /** A request left the queue for the engine after waiting this long (0 when admitted at once). */
  waited?(model: string, ms: number): void;
  rejected?(model: string, reason: QueueRejection): void;
}

export interface EnterOptions {
  /** Fairness is between flows: a user id, or the client IP for requests without an account. */
  flow: string;
  /** The flow's tier weight (1 = one turn per round). */
  weight: number;
  /** Aborting it (client gone) leaves the queue at once. */
  signal?: AbortSignal;
  /** Called every `updateEveryMs` while the request waits (`Slot.position()` gives the first). */
  onUpdate?: (update: QueueUpdate) => void;
}

/** A place in one model's admission: waiting, then running, until released. */
export interface Slot {
  /** True when the request could not run at once and waits in line. */
  readonly queued: boolean;
  /** Resolves when the request may run; rejects on abort or when the wait runs out (503). */
  readonly ready: Promise<void>;
  /** Milliseconds spent waiting so far (final once `ready` settled). */
  waitedMs(): number;
  /** The place in line now; null once the request runs (or left). */
  position(): QueueUpdate | null;
  /**
   * Leaves the queue, or frees the running place for the next request. Idempotent.
   * `measured: false` keeps this run out of the service-time estimate (it was cut short).
   */
  release(measured?: boolean): void;
}

interface Waiter {
  options: EnterOptions;
  enqueuedAt: number;
  /** Takes the running place (the caller already counted it). */
  admit(): void;
  /** Leaves the line without running, rejecting `ready` with `reason`. */
  leave(reason: unknown): void;
}

/**
 * A waiting request is refused (queue_timeout) after GRACE × maxWaitMs: it was admitted on an
 * estimate of at most maxWaitMs, and ending an accepted stream with an error is the worst answer,
 * so estimates that turn out short get this much room before it happens.
 */
const GRACE = 2;

/** The latest samples (oldest first), summarised as their median or their mean. */
class RecentSamples {
  private readonly samples: number[] = [];
  median: number | null = null;
  mean: number | null = null;

  constructor(private readonly size: number) {}

  add(sample: number): void {
    this.samples.push(sample);
    if (this.samples.length > this.size) this.samples.shift();
    const sorted = [...this.samples].sort((a, b) => a - b);
    this.median = sorted[Math.floor(sorted.length / 2)]!;
    this.mean = sorted.reduce((sum, v) => sum + v, 0) / sorted.length;
  }
}

/**
 * One model's admission queue, in front of the engine: at most `capacity` requests run, the rest
 * wait in a fair order (see FairQueue) with a bounded length and wait. Every refusal is decided
 * synchronously in `enter`, before the caller has written a byte, and carries Retry-After.
 */
export class AdmissionQueue {
  private readonly queue = new FairQueue<Waiter>();
  private running = 0;
  /** How long a request holds its place (admission to release). */
  private readonly service = new RecentSamples(31);
  /** Time between two admissions while requests wait: how fast the line moves. */
  private readonly turns = new RecentSamples(64);
  /** When the last place was handed to a waiting request; null once nobody waits. */
  private lastTurnAt: number | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    readonly model: string,
    private readonly settings: () => QueueSettings,
    private readonly observer: QueueObserver = {},
  ) {}

  get runningCount(): number {
    return this.running;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /**
   * Typical service time: the median of the latest measured runs (the assumed one before any).
   * A median, because the first runs after a start are often many times slower (cold caches, a
   * burst of arrivals); a mean would carry them for long.
   */
  get serviceEstimateMs(): number {
    return this.service.median ?? this.settings().assumedServiceMs;
  }

  /**
   * How long the line takes to move up one place: the mean time between admissions while
   * requests wait. Measured so, because that includes everything a request costs the server
   * besides its time on a sequence (parsing, billing, logging): service time / capacity alone
   * underestimated waits about fourfold under load. A mean, not a median: requests batched
   * together finish together, so admissions come in bursts (intervals of 1 ms, 1 ms, 1 ms,
   * 200 ms…) whose median says nothing. Before any such measure: service time / capacity.
   */
  get turnEstimateMs(): number {
    return this.turns.mean ?? this.serviceEstimateMs / this.settings().capacity;
  }

  /** Throws ServiceError (rate_limited or unavailable, with retryAfterS) when the request cannot be queued. */
  enter(options: EnterOptions): Slot {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("aborted");
    if (this.closed) throw shuttingDown();
    const settings = this.settings();
    // Capacity can grow (a fleet replica back in rotation): those already waiting go first.
    if (this.running < settings.capacity && this.queue.length > 0) this.pump();
    if (this.running < settings.capacity && this.queue.length === 0) {
      this.queue.admitDirectly(options.flow, options.weight);
      this.running++;
      this.observer.waited?.(this.model, 0);
      const startedAt = performance.now();
      let released = false;
      return {
        queued: false,
        ready: Promise.resolve(),
        waitedMs: () => 0,
        position: () => null,
        release: (measured = true) => {
          if (released) return;
          released = true;
          this.finishRun(startedAt, measured);
        },
      };
    }
    this.refuseIfNeeded(options.flow, settings);
    return this.enqueue(options, settings);
  }

  private refuseIfNeeded(flow: string, settings: QueueSettings): void {
    const perTurnMs = this.turnEstimateMs;
    if (this.queue.queuedFor(flow) >= settings.maxPerUser) {
      const retryMs = (this.queue.aheadOfNew(flow) - this.queue.queuedFor(flow) + 1) * perTurnMs;
      throw this.refusal(
        "queue_user_full",
        "rate_limited",
        `You already have ${settings.maxPerUser} requests waiting for ${this.model}; wait for them to finish.`,
        retryMs,
      );
    }
    if (this.queue.length >= settings.maxLength) {
      throw this.refusal(
        "queue_full",
        "unavailable",
        `The server is busy: ${this.queue.length} requests are waiting for ${this.model}. Please retry later.`,
        // The queued work: a retry sooner would find the line as long (a place frees once a turn).
        this.queue.length * perTurnMs,
      );
    }
    const estimateMs = (this.queue.turnsBeforeNew(flow) + 1) * perTurnMs;
    if (estimateMs > settings.maxWaitMs) {
      throw this.refusal(
        "queue_wait_too_long",
        "unavailable",
        `The server is busy: the wait for ${this.model} would be about ${Math.ceil(estimateMs / 1000)} s, over the ${Math.ceil(settings.maxWaitMs / 1000)} s limit. Please retry later.`,
        estimateMs - settings.maxWaitMs,
      );
    }
  }

  private enqueue(options: EnterOptions, settings: QueueSettings): Slot {
    const enqueuedAt = performance.now();
    let settledAt: number | null = null;
    let startedAt = 0;
    let state: "waiting" | "running" | "left" | "released" = "waiting";
    let resolveReady!: () => void;
    let rejectReady!: (reason: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // The caller awaits `ready`; this only keeps an unawaited refusal from crashing the process.
    ready.catch(() => undefined);

    const onAbort = () => waiter.leave(options.signal?.reason ?? new Error("aborted"));
    const deadlineMs = GRACE * settings.maxWaitMs;
    const timer = setTimeout(() => {
      this.observer.rejected?.(this.model, "queue_timeout");
      waiter.leave(
        new ServiceError(
          "unavailable",
          `The server is busy: waited ${Math.round(deadlineMs / 1000)} s for ${this.model} without a free place. Please retry later.`,
          { code: "queue_timeout", retryAfterS: retryAfterSeconds(this.turnEstimateMs) },
        ),
      );
    }, deadlineMs);
    timer.unref();
    const stopWaiting = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      settledAt = performance.now();
    };
    const waiter: Waiter = {
      options,
      enqueuedAt,
      admit: () => {
        stopWaiting();
        state = "running";
        startedAt = performance.now();
        resolveReady();
      },
      leave: (reason) => {
        if (state !== "waiting") return;
        state = "left";
        stopWaiting();
        this.queue.remove(entry);
        rejectReady(reason);
        // Someone further back may fit now that this place is free.
        this.pump();
      },
    };
    const entry = this.queue.push(options.flow, options.weight, waiter);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    this.startTicker(settings.updateEveryMs);

    return {
      queued: true,
      ready,
      waitedMs: () => (settledAt ?? performance.now()) - enqueuedAt,
      position: () => (state === "waiting" ? this.updateFor(entry, this.queue.ordered().indexOf(entry) + 1) : null),
      release: (measured = true) => {
        if (state === "waiting") waiter.leave(new Error("released while waiting"));
        else if (state === "running") {
          state = "released";
          this.finishRun(startedAt, measured);
        }
      },
    };
  }

  private finishRun(startedAt: number, measured: boolean): void {
    this.running--;
    if (measured) this.measure(performance.now() - startedAt);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.running < this.settings().capacity) {
      const entry = this.queue.shift();
      if (!entry) break;
      this.running++;
      const now = performance.now();
      if (this.lastTurnAt !== null) this.turns.add(now - this.lastTurnAt);
      // Only turns taken back to back count: a gap while nobody waited is idleness, not speed.
      this.lastTurnAt = this.queue.length > 0 ? now : null;
      this.observer.waited?.(this.model, now - entry.value.enqueuedAt);
      entry.value.admit();
    }
    this.stopTickerIfIdle();
  }

  private measure(ms: number): void {
    this.service.add(ms);
  }

  /**
   * Position: the place in line now. Wait: as `turnsBefore` expects it, lighter users' overtaking
   * included, less the part of the coming turn already waited (since the line last moved, or since
   * this request joined), so the estimate counts down between moves rather than standing still.
   */
  private updateFor(entry: FairEntry<Waiter>, position: number): QueueUpdate {
    const turnMs = this.turnEstimateMs;
    const sinceMove = performance.now() - Math.max(this.lastTurnAt ?? 0, entry.value.enqueuedAt);
    const waitMs = (this.queue.turnsBefore(entry) + 1) * turnMs - Math.min(sinceMove, turnMs);
    return {
      position,
      queueLength: this.queue.length,
      estimatedWaitS: Math.max(1, Math.ceil(waitMs / 1000)),
    };
  }

  private startTicker(everyMs: number): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => this.broadcast(), everyMs);
    this.ticker.unref();
  }

  private stopTickerIfIdle(): void {
    if (this.queue.length > 0 || !this.ticker) return;
    clearInterval(this.ticker);
    this.ticker = null;
  }

  /** One sort per tick for every waiter, rather than one per waiter; first, places that opened as capacity grew. */
  private broadcast(): void {
    this.pump();
    this.queue.ordered().forEach((entry, index) => {
      try {
        entry.value.options.onUpdate?.(this.updateFor(entry, index + 1));
      } catch {
        // A listener's failure (its client is gone) must not stop the others' updates.
      }
    });
  }

  private refusal(reason: QueueRejection, kind: "rate_limited" | "unavailable", message: string, retryMs: number): ServiceError {
    this.observer.rejected?.(this.model, reason);
    return new ServiceError(kind, message, { code: reason, retryAfterS: retryAfterSeconds(retryMs) });
  }

  /** Shutting down: every waiting request is refused at once instead of holding the close up. */
  close(): void {
    this.closed = true;
    for (const entry of this.queue.ordered()) entry.value.leave(shuttingDown());
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }
}

function shuttingDown(): ServiceError {
  return new ServiceError("unavailable", "The server is shutting down. Please retry shortly.", { code: "shutting_down", retryAfterS: 5 });
}

/** Whole seconds, at least 1 and at most an hour: what a Retry-After header can honestly promise. */
export function retryAfterSeconds(ms: number): number {
  return Math.min(3600, Math.max(1, Math.ceil(ms / 1000)));
}

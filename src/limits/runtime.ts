import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { LimitsConfig } from "./config.ts";
import { Metrics } from "../metrics/metrics.ts";
import { Limits, type LimitsDeps } from "./limits.ts";
import { RedisAdmission } from "./redisAdmission.ts";
import { RedisBucketStore } from "./redisBucketStore.ts";
import { MemoryBucketStore, type BucketStore } from "./tokenBucket.ts";

export interface LimitsRuntime {
  limits: Limits;
  metrics: Metrics;
  /** Refuses waiting and new completions (503): call before closing the HTTP server. */
  drain(): void;
  /** Lets go of Redis: call after the HTTP server closed. */
  close(): Promise<void>;
}

/**
 * Builds the limits and the metrics they report to. Balances, admission queues and concurrency caps
 * live in Redis when `redisUrl` is set (several Sputnik processes then enforce one limit, one
 * model capacity and one fair order), else in memory. A configured Redis that
 * cannot be reached at start is an error: silently limiting per process would double every limit.
 */
export async function startLimits(
  config: { limits: LimitsConfig; redisUrl?: string | undefined },
  deps: Pick<LimitsDeps, "capacityOf" | "weightOf" | "attackMode"> & { logger: Logger },
): Promise<LimitsRuntime> {
  let redis: Redis | null = null;
  let store: BucketStore;
  if (config.redisUrl) {
    // No offline queue: while Redis is away, commands fail at once and the store falls back to memory.
    redis = new Redis(config.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redis.on("error", () => undefined); // reported by the store when it matters, not on every retry
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw new Error(`Cannot reach Redis at ${redactUrl(config.redisUrl)} (redisUrl): ${(error as Error).message}`);
    }
    store = new RedisBucketStore(redis, { prefix: config.limits.redisKeyPrefix, logger: deps.logger });
  } else {
    store = new MemoryBucketStore();
  }
  let limits: Limits | null = null;
  const metrics = new Metrics(() => limits?.load() ?? []);
  const shared = redis;
  limits = new Limits({
    config: config.limits,
    store,
    ...deps,
    ...(shared
      ? {
          admission: (context, memory) =>
            new RedisAdmission(shared, context, memory, {
              prefix: config.limits.redisKeyPrefix,
              leaseMs: config.limits.cluster.leaseMs,
              pollMs: config.limits.cluster.pollMs,
              logger: deps.logger,
            }),
        }
      : {}),
    observer: {
      rejected: (reason) => metrics.rejected.inc({ reason }),
      queueWait: (model, seconds) => metrics.queueWait.observe({ model }, seconds),
    },
  });
  const built = limits;
  return {
    limits: built,
    metrics,
    drain: () => built.drain(),
    close: async () => {
      await built.close();
      if (redis) await redis.quit().catch(() => redis?.disconnect());
    },
  };
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}

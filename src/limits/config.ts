import { z } from "zod";

/**
 * Every limit Sputnik enforces, with defaults meant for a small public instance. A rate of 0
 * switches that limit off. Set in the config file under "limits", or as JSON in SPUTNIK_LIMITS.
 */
const perMinute = (fallback: number) => z.number().int().min(0).max(1_000_000_000).default(fallback);

const rates = (requests: number, tokens: number) =>
  z
    .object({
      requestsPerMinute: perMinute(requests),
      /** Prompt plus completion tokens; charged when a completion ends, so a bucket may go into debt. */
      tokensPerMinute: perMinute(tokens),
    })
    .strict()
    .prefault({});

/**
 * Rates of one plan (billing's tier; its queue weight is the plan's `concurrencyWeight`): its own
 * per-user rates, and optionally one cap shared by all its users.
 */
const tierSchema = z
  .object({
    /** Per-user rates for users of this tier (override `perUser`). */
    requestsPerMinute: z.number().int().min(0).optional(),
    tokensPerMinute: z.number().int().min(0).optional(),
    /** One bucket shared by every user of the tier, so a flood of free accounts cannot starve paying ones. */
    totalRequestsPerMinute: z.number().int().min(0).default(0),
    totalTokensPerMinute: z.number().int().min(0).default(0),
  })
  .strict();

export const limitsConfigSchema = z
  .object({
    perKey: rates(600, 1_000_000),
    perUser: rates(600, 2_000_000),
    /** Requests with no account (anonymous, or the local operator) are limited per client IP. */
    perIp: rates(120, 500_000),
    /** Login, sign-up and access-code attempts per client IP (brute-force guard). */
    authPerIpPerMinute: perMinute(20),
    /** Any request to any route, per client IP: a flood guard in front of everything else. */
    httpPerIpPerMinute: perMinute(1200),
    /** Keyed by plan id. */
    tiers: z.record(z.string(), tierSchema).default({}),
    queue: z
      .object({
        /** Requests waiting per model, all users together. */
        maxLength: z.number().int().min(0).max(100_000).default(256),
        /** Requests one user (or one IP, without an account) may have waiting per model. */
        maxPerUser: z.number().int().min(1).max(100_000).default(64),
        /**
         * Longest wait: a request whose estimated wait is longer gets 503 at once. One that was
         * admitted but still waits after twice this (the estimate was wrong) gets 503 then.
         */
        maxWaitMs: z.number().int().min(0).max(3_600_000).default(120_000),
        /** Service time assumed for a model until real requests have been measured. */
        assumedServiceMs: z.number().int().min(1).max(3_600_000).default(10_000),
        /** How often a waiting stream hears its place in line (SSE comment). */
        keepAliveMs: z.number().int().min(100).max(60_000).default(2000),
      })
      .strict()
      .prefault({}),
    /** Completions (queued or running) one client IP may have open at once. 0 = no cap. */
    maxConcurrentPerIp: z.number().int().min(0).max(100_000).default(64),
    /** Completions (queued or running) one API key may have open at once. 0 = no cap. */
    maxConcurrentPerKey: z.number().int().min(0).max(100_000).default(16),
    /** TCP connections one client IP may hold open (slowloris guard). 0 = no cap. */
    maxConnectionsPerIp: z.number().int().min(0).max(1_000_000).default(256),
    /** Messages in one chat completion request. */
    maxMessages: z.number().int().min(1).max(100_000).default(1024),
    /** Characters in one message's content. */
    maxMessageChars: z.number().int().min(1).max(100_000_000).default(1_000_000),
    /** Time a client has to send its request headers. */
    headersTimeoutMs: z.number().int().min(1000).max(600_000).default(15_000),
    /** Time a client has to send its whole request (headers and body). */
    requestTimeoutMs: z.number().int().min(1000).max(3_600_000).default(60_000),
    /** Prefix of the rate-limit keys in Redis (when `redisUrl` is set): one per deployment sharing a Redis. */
    redisKeyPrefix: z.string().min(1).max(100).default("sputnik:rl:"),
    /**
     * With `redisUrl`: the admission queue and the concurrency caps are shared by every Sputnik
     * sharing the Redis (src/limits/redisAdmission.ts). Running places, waiting places and cap
     * places are leases that the holding process renews; a process that dies gives its places
     * back within `leaseMs`.
     */
    cluster: z
      .object({
        /** How long a place outlives its holder's last renewal: a dead gateway's places are free after at most this. */
        leaseMs: z.number().int().min(1000).max(600_000).default(10_000),
        /**
         * How often a gateway renews its leases and re-reads its waiters' places. Freed places are
         * announced at once by pub/sub; this poll is what finds places freed by expiry (a dead holder)
         * and announcements lost on a reconnect. Kept well under a third of `leaseMs`.
         */
        pollMs: z.number().int().min(50).max(60_000).default(500),
      })
      .strict()
      .refine((c) => c.pollMs * 3 <= c.leaseMs, { message: "limits.cluster.pollMs must be at most a third of leaseMs, so a live holder renews before its lease runs out" })
      .prefault({}),
    /** Attack mode (switched on by an admin) multiplies these into the limits above. */
    attackMode: z
      .object({
        /** Applied to every per-minute rate. */
        rateFactor: z.number().gt(0).max(1).default(0.25),
        /** Applied to the queue's length, per-user share and longest wait. */
        queueFactor: z.number().gt(0).max(1).default(0.5),
        /** Applied to the concurrency caps per IP and per key. */
        concurrencyFactor: z.number().gt(0).max(1).default(0.25),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type LimitsConfig = z.infer<typeof limitsConfigSchema>;
export type TierConfig = z.infer<typeof tierSchema>;

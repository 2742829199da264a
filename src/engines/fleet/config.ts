import { z } from "zod";
import { remoteModelSchema, type RemoteModelConfig } from "../remote/config.ts";

/** One upstream replica of a fleet model (operator config only, like every upstream URL). */
export const replicaSchema = z
  .object({
    baseUrl: z.string().url(),
    apiKey: z.string().optional(),
    /** Shown in /health and /metrics instead of the URL; defaults to `<model id>#<index>`. */
    name: z.string().min(1).max(128).optional(),
    /** Share of traffic relative to the other replicas (routing), e.g. 2 for a replica twice the size. */
    weight: z.number().positive().max(1000).default(1),
    /** Requests this replica runs at once; the model's capacity is the sum over healthy replicas. */
    maxConcurrency: z.number().int().min(1).max(10_000).default(8),
  })
  .strict();

export const routingPolicySchema = z.enum(["affinity", "least_loaded", "round_robin"]);
export type RoutingPolicy = z.infer<typeof routingPolicySchema>;

/**
 * A model served by several OpenAI-compatible replicas of one engine (vLLM, SGLang, llama-server,
 * Sputnik nodes). Defaults are anchored on SGLang's gateway (breaker after 5 consecutive
 * failures) and LiteLLM's router (5 s cool-down), with probes often enough that a recovered
 * replica is back within one interval.
 */
export const fleetModelSchema = z
  .object({
    id: z.string().min(1).max(128),
    /** Fixed replicas; with `dns`, these are served beside the ones the name resolves to. */
    replicas: z.array(replicaSchema).max(256).default([]),
    /**
     * A DNS name re-resolved every interval into replicas, one per address (a Kubernetes headless
     * service listing vLLM or SGLang pods): `<scheme>://<address>:<port><basePath>`, named
     * `<name>@<address>`. A failed or empty answer keeps the last replicas.
     */
    dns: z
      .object({
        name: z.string().min(1).max(253),
        port: z.number().int().min(1).max(65_535),
        scheme: z.enum(["http", "https"]).default("http"),
        basePath: z.string().max(200).regex(/^(\/[^?#]*)?$/, "basePath must start with / (e.g. /v1)").default("/v1"),
        intervalMs: z.number().int().min(1000).max(3_600_000).default(10_000),
        apiKey: z.string().optional(),
        weight: z.number().positive().max(1000).default(1),
        maxConcurrency: z.number().int().min(1).max(10_000).default(8),
      })
      .strict()
      .optional(),
    /** Model name sent upstream; defaults to `id`. */
    upstreamModel: z.string().optional(),
    reasoning: z.boolean().default(true),
    /** The replicas serve `/embeddings` for this model: Sputnik's /v1/embeddings passes requests to one in rotation. */
    embeddings: z.boolean().default(false),
    /**
     * The replicas' context in tokens (vLLM `--max-model-len`, SGLang `--context-length`,
     * llama-server `-c` / `-np`, a Sputnik node's `contextSize`): shown in /v1/models, a
     * max_tokens that cannot fit is refused before anything is sent, and a request without
     * max_tokens is bounded by the context (as on a local model) instead of being sent
     * `billing.defaultMaxOutputTokens`. Absent: unknown, and that default is imposed.
     */
    contextLength: z.number().int().min(16).max(10_000_000).optional(),
    /** Whole request, first byte to last. */
    timeoutMs: z.number().int().positive().default(600_000),
    /** `affinity`: a conversation's turns go to the replica holding its prefix, bounded by load. */
    routing: routingPolicySchema.default("affinity"),
    affinity: z
      .object({
        /** How long a conversation stays tied to its replica after its last turn. */
        ttlMs: z.number().int().positive().default(3_600_000),
        /** A replica is too busy for its conversations once its in-flight count would exceed loadFactor × its fair share + loadSlack. */
        loadFactor: z.number().min(1).max(100).default(1.5),
        loadSlack: z.number().int().min(0).max(10_000).default(2),
        /**
         * Prefix hashes kept per model (message boundaries from the first user message on, LRU):
         * a prompt goes to the replica last sent its longest prefix. 0: no prefix index.
         */
        prefixEntries: z.number().int().min(0).max(10_000_000).default(100_000),
        /** Boundaries indexed and looked up per request, the longest first. */
        prefixDepth: z.number().int().min(1).max(256).default(16),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        /** GET `<baseUrl>/<probePath>` every interval; 2xx is up. */
        probePath: z.string().min(1).max(200).default("models"),
        probeIntervalMs: z.number().int().min(100).max(600_000).default(2000),
        probeTimeoutMs: z.number().int().min(50).max(60_000).default(1000),
        /** Consecutive failed requests that open a replica's circuit breaker. */
        failureThreshold: z.number().int().min(1).max(1000).default(5),
        /** After opening, how long until a probe may close the breaker again. */
        cooldownMs: z.number().int().min(0).max(3_600_000).default(5000),
        /** A replica that sends no response headers within this is failed over (and counted as failing). */
        headersTimeoutMs: z.number().int().min(50).max(600_000).default(15_000),
      })
      .strict()
      .prefault({}),
    failover: z
      .object({
        /** Replicas one request may try before its first byte (1 = no failover). */
        maxAttempts: z.number().int().min(1).max(10).default(3),
        /** Retries allowed per request over the window (0.2: at most 20% extra load on a failing fleet)… */
        retryRatio: z.number().min(0).max(10).default(0.2),
        /** …plus this many per window, so a quiet gateway can still fail over. */
        minRetries: z.number().int().min(0).max(10_000).default(3),
        windowMs: z.number().int().min(1000).max(3_600_000).default(10_000),
      })
      .strict()
      .prefault({}),
    /**
     * Load signals from each replica's own Prometheus metrics (vLLM, SGLang, llama-server with
     * `--metrics`, Sputnik): its queue, running requests and KV-cache usage, read every interval
     * and used by `least_loaded` and by affinity's load bound. Absent: only in-flight counts.
     */
    metrics: z
      .object({
        /** Where the metrics are: a path from the replica's host root (`/metrics`), or relative to its baseUrl. */
        path: z.string().min(1).max(200).default("/metrics"),
        intervalMs: z.number().int().min(100).max(600_000).default(1000),
        timeoutMs: z.number().int().min(50).max(60_000).default(500),
        /** A reading older than this is not used for routing (a replica whose metrics stopped answering). */
        maxAgeMs: z.number().int().min(100).max(3_600_000).default(5000),
        /** A replica whose KV cache is fuller than this (0–1) is passed over while another is not. */
        maxKvUsage: z.number().min(0).max(1).default(0.95),
        /** Sent as `Authorization: Bearer …` (a Sputnik node's `metricsToken`); default: the replica's apiKey. */
        token: z.string().optional(),
      })
      .strict()
      .optional(),
    /** Prefix of the routing-state keys in Redis (with `redisUrl`): one per deployment sharing a Redis. */
    stateKeyPrefix: z.string().min(1).max(100).default("sputnik:fleet:"),
    /** How long a gateway's in-flight lease on a replica lives without renewal (a dead gateway's count fades after it). */
    leaseMs: z.number().int().min(1000).max(600_000).default(30_000),
  })
  .strict()
  .refine((m) => m.replicas.length > 0 || m.dns !== undefined, { message: "a fleet model needs replicas, a dns name, or both", path: ["replicas"] });

export type FleetModelConfig = z.infer<typeof fleetModelSchema>;

/**
 * An entry of `remoteModels`: one `baseUrl` (the remote engine, as before) or `replicas` (the
 * fleet engine), checked by the schema its shape asks for, so errors name the real field (a
 * plain union would only say "Invalid input"). Giving both is refused (`baseUrl` is not a fleet key).
 */
export const remoteModelEntrySchema = z.unknown().transform((value, ctx): RemoteModelConfig | FleetModelConfig => {
  const fleet = typeof value === "object" && value !== null && ("replicas" in value || "dns" in value);
  const parsed = (fleet ? fleetModelSchema : remoteModelSchema).safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
  return z.NEVER;
});

export type RemoteModelEntry = z.infer<typeof remoteModelEntrySchema>;

export function isFleetModel(entry: RemoteModelEntry): entry is FleetModelConfig {
  return "replicas" in entry && Array.isArray(entry.replicas);
}

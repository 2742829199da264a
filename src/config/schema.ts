import os from "node:os";
import { z } from "zod";
import { authConfigSchema, originSchema, trustProxySchema } from "../auth/config.ts";
import { billingConfigSchema } from "../billing/config.ts";
import { conversationsConfigSchema } from "../chat/config.ts";
import { localEngineConfigSchema } from "../engines/local/config.ts";
import { engineSpecSchema } from "../engines/registry.ts";
import { remoteModelEntrySchema } from "../engines/fleet/config.ts";
import { limitsConfigSchema } from "../limits/config.ts";
import { moderationConfigSchema } from "../moderation/config.ts";
import { databaseConfigSchema } from "../store/config.ts";
import { documentsConfigSchema } from "../search/files/config.ts";
import { webSearchConfigSchema } from "../search/web/config.ts";
import { tracingConfigSchema } from "../tracing/config.ts";

/** A model served by an OpenAI-compatible upstream. The client never chooses the URL: only operators do. */
export const configSchema = z.object({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8080),
  dataDir: z.string().default("./data"),
  /** Defaults to `<dataDir>/models`. */
  modelsDir: z.string().optional(),
  /**
   * Local models to load: a name in the models directory, a path to a .gguf file, or "demo".
   * Empty means the first-run default (pull the default model, fall back to the demo model).
   */
  models: z.array(z.string().min(1)).default([]),
  /** Source pulled on first run when no model is configured. */
  defaultModelSource: z.string().default("hf:unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M"),
  /** Whether first run may pull the default model from the network. */
  pullDefaultModel: z.boolean().default(true),
  /** Upstream models: `{id, baseUrl, …}` (one upstream) or `{id, replicas: [{baseUrl, …}], routing?, …}` (a fleet). */
  remoteModels: z.array(remoteModelEntrySchema).default([]),
  /**
   * Engines by kind (src/runtime/engines.ts lists the kinds), each entry checked by its kind:
   * `{ "kind": "local" }` serves `models`; `{ "kind": "remote", "models": [...] }` serves upstreams
   * like `remoteModels`. `models` and `remoteModels` keep working and are added to this list.
   */
  engines: z.array(engineSpecSchema).max(64).default([]),
  /** llama.cpp compute threads; defaults to the physical core count. */
  threads: z.number().int().min(1).max(256).default(Math.max(1, os.availableParallelism())),
  /**
   * Parallel sequences per local model (requests decoded in one batch); "auto" sizes it from the
   * memory available for contexts (see src/engines/local/memoryCheck.ts).
   */
  parallel: z.union([z.literal("auto"), z.number().int().min(1).max(64)]).default("auto"),
  /** Context size per sequence, in tokens. */
  contextSize: z.number().int().min(256).max(1_048_576).default(4096),
  databaseUrl: z.string().optional(),
  /** Database pool, timeouts and health check (src/store/config.ts); the URL is `databaseUrl`. */
  database: databaseConfigSchema,
  redisUrl: z.string().optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  hfEndpoint: z.string().url().default("https://huggingface.co"),
  /** Allow outbound fetches (pulls, upstreams) to private/loopback addresses. */
  allowPrivateNetwork: z.boolean().default(false),
  /** Allow plain http:// sources for the service's own pulls (the first-run default, Admin → Models), like `sputnik pull --allow-http`. */
  allowHttpPulls: z.boolean().default(false),
  /** Largest request body accepted, in bytes. */
  bodyLimit: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Browser origins allowed to call the API with credentials (exact matches; never "*"). */
  corsOrigins: z.array(originSchema).default([]),
  /** Behind a reverse proxy: which X-Forwarded-* headers to believe (client IP, https). */
  trustProxy: trustProxySchema.default(false),
  /** The address users reach Sputnik at; an https:// URL makes cookies Secure. */
  publicUrl: z.string().url().optional(),
  /** Local engine: disk context cache, memory budget, per-model thinking caps and speculative decoding (src/engines/local/config.ts). */
  localEngine: localEngineConfigSchema,
  /** Accounts, sessions, passwords (src/auth/config.ts). */
  auth: authConfigSchema,
  /** Rate limits, admission queue and request hygiene (src/limits/config.ts). */
  limits: limitsConfigSchema,
  /** Time zone for price windows and quotas, currency, reservation lease (src/billing/config.ts). */
  billing: billingConfigSchema,
  /** When a streaming answer left by a dead process is shown as interrupted (src/chat/config.ts). */
  conversations: conversationsConfigSchema,
  /**
   * At shutdown (SIGTERM), how long running answers (API streams and web replies alike) may finish
   * before they are cut, like vLLM's `--shutdown-timeout`: API streams then end with an error event,
   * web replies as "interrupted: server restarting". 0 cuts them at once. The older name
   * `shutdownDrainMs` (`SPUTNIK_SHUTDOWN_DRAIN_MS`) is still read (src/config/load.ts).
   */
  shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
  /** Bearer token for GET /metrics; without one, /metrics answers loopback clients only. */
  metricsToken: z.string().min(16, "metricsToken must be at least 16 characters").optional(),
  /** OpenTelemetry traces over OTLP/HTTP: off unless `tracing.otlpEndpoint` is set (src/tracing/config.ts). */
  tracing: tracingConfigSchema,
  /** How often the admin dashboard samples the /metrics registry (it keeps the last hour). */
  dashboardSampleMs: z.number().int().min(1000).max(60_000).default(5000),
  /** Audit suite files (format sputnik-audit-suite/1) offered in Admin → Audits beside the bundled one (src/audit). */
  auditSuites: z.array(z.string().min(1)).max(64).default([]),
  /** Moderation policies on the input and the output, never silent (src/moderation/config.ts). */
  moderation: moderationConfigSchema,
  /** Uploaded documents: size per file, stored bytes per user, background indexing (src/search/files/config.ts). */
  documents: documentsConfigSchema,
  /**
   * Search: `search.web` configures the web search provider (src/search/web/config.ts); absent,
   * web search is off (requests with web_search_options / Search are refused) and documents still work.
   * `search.embeddingModel`: a served model id that embeds (local GGUF with embeddings, or a remote
   * model with `embeddings: true`); documents are then also embedded as they are indexed and
   * retrieval is hybrid (lexical + vector, reciprocal rank fusion; src/search/semantic.ts). Absent:
   * lexical only.
   */
  search: z.object({ web: webSearchConfigSchema.optional(), embeddingModel: z.string().min(1).max(200).optional() }).strict().prefault({}),
});

export type Config = z.infer<typeof configSchema>;

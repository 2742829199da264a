import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { ModelRouter } from "../engines/router.ts";
import type { Limits } from "../limits/limits.ts";
import type { MetricsHistory } from "../metrics/history.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { Lifecycle } from "../serving/lifecycle.ts";
import { registerAnthropic } from "./anthropic/index.ts";
import { registerAccountRoutes } from "./app/accounts.ts";
import { registerAuditRoutes } from "./app/audits.ts";
import { registerConversations } from "./app/conversations.ts";
import { registerDashboardRoutes } from "./app/dashboard.ts";
import { registerAppModels } from "./app/models.ts";
import { registerSearchHistory } from "./app/searches.ts";
import { registerModerationAdmin } from "./app/moderation.ts";
import { registerModelsAdminRoutes } from "./app/modelsAdmin.ts";
import { registerBillingRoutes, type BillingRoutesDeps } from "./app/billing.ts";
import { describeError, frameworkErrors, installErrorHandlers } from "./errors.ts";
import { registerHealth } from "./health.ts";
import { registerMetrics } from "./metrics.ts";
import { registerAttackModeGate } from "./middleware/attackModeGate/index.ts";
import { registerAuth } from "./middleware/auth/index.ts";
import { capConnectionsPerIp, httpTimeouts } from "./middleware/connectionCaps/index.ts";
import { registerFloodGuard } from "./middleware/floodGuard/index.ts";
import { registerSecurityHeaders } from "./middleware/securityHeaders/index.ts";
import { registerShutdownGate } from "./middleware/shutdown/index.ts";
import { registerRequestTracing, traceAuth } from "./middleware/tracing/index.ts";
import { registerWebApp } from "./webApp.ts";
import { registerBalance } from "./openai/balance.ts";
import { registerChatCompletions } from "./openai/chatCompletions.ts";
import { registerCompletions } from "./openai/completions.ts";
import { registerModels } from "./openai/models.ts";
import { registerModerations } from "./openai/moderations.ts";
import { registerEmbeddings } from "./openai/embeddings.ts";
import { registerOpenAIFiles } from "./openai/files.ts";
import { registerAppFiles } from "./app/files.ts";
import type { FilesDeps } from "../commands/files.ts";
import type { Moderation } from "../moderation/moderation.ts";
import { Serving } from "../serving/completion.ts";
import type { Store } from "../store/database.ts";
import type { ModelManagement } from "../models/management.ts";

export interface ServerDeps {
  /** Accounts (sessions, API keys, /api/auth, /api/keys, /api/admin): with both, every route needs auth unless public. */
  store?: Store;
  config?: Config;
  router: ModelRouter;
  /** The serving pipeline; default: one over `router`, `limits` and the store, with no billing. */
  serving?: Serving;
  logger: Logger;
  bodyLimit: number;
  /** Billing routes: GET /v1/user/balance, /api/billing/*, /api/admin/billing/*. */
  billing?: BillingRoutesDeps;
  /** Rate limits, admission queue, request hygiene (src/limits); absent: none enforced. */
  limits?: Limits;
  /** GET /metrics and the request counters (src/metrics). */
  metrics?: Metrics;
  /** Bearer token for /metrics; without it /metrics serves loopback clients only. */
  metricsToken?: string;
  /** Readiness and drain state (/readyz, the shutdown gate); default: ready, draining once the server closes. */
  lifecycle?: Lifecycle;
  /** The last hour of `metrics`, sampled (src/metrics/history.ts): the admin dashboard's API. */
  history?: MetricsHistory;
  /** Moderation policies: POST /v1/moderations and the admin list (the pipeline's stages come with `serving`). */
  moderation?: Moderation;
  /** Uploaded documents: /v1/files and /api/files (src/commands/files.ts). */
  files?: FilesDeps;
  /** Local models pulled, loaded and unloaded at run time: /api/admin/models (Admin → Models). */
  models?: ModelManagement;
}

/** Builds the HTTP server: one Fastify app, thin routes per surface. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    // Slowloris: a client must send its headers and body in bounded time.
    ...(deps.limits ? httpTimeouts(deps.limits.config) : { requestTimeout: 120_000 }),
    connectionTimeout: 0,
    keepAliveTimeout: 10_000,
    // Treat /v1/models and /v1/models/ alike, but nothing looser (no case folding).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, caseSensitive: true },
    // Believe X-Forwarded-* (client IP, https) only from the configured proxies.
    trustProxy: deps.config?.trustProxy ?? false,
    // Router errors (a malformed %-escape in the path) answer in the API's error shape too.
    frameworkErrors,
    // During shutdown the shutdown gate refuses new requests in the API's shape (not Fastify's body).
    return503OnClosing: false,
  });
  installErrorHandlers(app);
  // First, so every request has its span (when tracing is on), refusals by the hooks below included.
  registerRequestTracing(app);
  const lifecycle = deps.lifecycle ?? new Lifecycle("ready");
  registerShutdownGate(app, { lifecycle });
  await registerSecurityHeaders(app);
  if (deps.metrics) registerMetrics(app, { metrics: deps.metrics, token: deps.metricsToken });
  if (deps.limits) {
    const limits = deps.limits;
    capConnectionsPerIp(app.server, limits.config.maxConnectionsPerIp, (reason) => limits.noteRejection(reason));
    // Before the auth hook, so a flood is refused before any credential lookup.
    registerFloodGuard(app, limits);
    registerAttackModeGate(app, limits);
  }
  // Sets request.actor and enforces each route's access; routes below are deny-by-default.
  const auth = deps.store && deps.config ? await traceAuth(app, () => registerAuth(app, { store: deps.store!, config: deps.config! })) : null;
  registerHealth(app, { ...deps, lifecycle });
  registerModels(app, { router: deps.router, startedAt: Date.now() });
  const serving =
    deps.serving ??
    new Serving({
      router: deps.router,
      ...(deps.limits ? { limits: deps.limits } : {}),
      ...(deps.store ? { db: deps.store.db } : {}),
      describeError,
      logger: deps.logger,
    });
  registerChatCompletions(app, { serving });
  registerCompletions(app, { serving });
  if (deps.moderation) registerModerations(app, { moderation: deps.moderation });
  registerEmbeddings(app, { serving });
  if (deps.files) await registerOpenAIFiles(app, deps.files);
  // Anthropic's Messages API on the same pipeline; quiet streams ping as often as /v1's keep-alives.
  await registerAnthropic(app, {
    serving,
    router: deps.router,
    startedAt: Date.now(),
    ...(deps.limits ? { pingMs: deps.limits.config.queue.keepAliveMs } : {}),
  });
  if (deps.billing) {
    registerBalance(app, deps.billing);
    registerBillingRoutes(app, deps.billing);
  }
  if (auth) registerAccountRoutes(app, auth);
  if (auth && deps.history) registerDashboardRoutes(app, { history: deps.history, router: deps.router });
  if (auth && deps.moderation) registerModerationAdmin(app, { db: auth.store.db, moderation: deps.moderation });
  // Model audits (Admin → Audits), run through the same pipeline as the audit account.
  if (auth) registerAuditRoutes(app, { db: auth.store.db, serving, suiteFiles: deps.config?.auditSuites ?? [], logger: deps.logger });
  if (auth) {
    // The web app's API (conversations, its model list) and the app itself at `/`.
    registerConversations(app, {
      store: auth.store,
      router: deps.router,
      serving,
      staleStreamMs: deps.config?.conversations.staleStreamMs,
      flushIntervalMs: deps.config?.conversations.flushIntervalMs,
      ...(deps.config?.shutdownTimeoutMs !== undefined ? { drainMs: deps.config.shutdownTimeoutMs } : {}),
      // Answers outlive their tab: a session may leave as many running as one API key may open.
      ...(deps.limits ? { maxRunningPerUser: maxConcurrentPerKey(deps.limits) } : {}),
      ...(deps.config ? { defaultPlanId: deps.config.billing.defaultPlan } : {}),
    });
    registerAppModels(app, { router: deps.router, serving });
    registerSearchHistory(app, { db: auth.store.db });
    if (deps.files) await registerAppFiles(app, deps.files);
    if (deps.models) registerModelsAdminRoutes(app, { store: auth.store, manager: deps.models });
  }
  await registerWebApp(app);
  return app;
}

/** The per-key concurrency cap in force (tightened in attack mode), as a reader for the web app's answers. */
function maxConcurrentPerKey(limits: Limits): () => Promise<number> {
  return async () => (await limits.inForce()).maxConcurrentPerKey;
}

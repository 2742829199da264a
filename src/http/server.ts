import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { ModelRouter } from "../engines/router.ts";
import type { Limits } from "../limits/limits.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { registerAnthropic } from "./anthropic/index.ts";
import { registerAccountRoutes } from "./app/accounts.ts";
import { registerConversations } from "./app/conversations.ts";
import { registerAppModels } from "./app/models.ts";
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
import { registerWebApp } from "./webApp.ts";
import { registerBalance } from "./openai/balance.ts";
import { registerChatCompletions } from "./openai/chatCompletions.ts";
import { registerCompletions } from "./openai/completions.ts";
import { registerModels } from "./openai/models.ts";
import { Serving } from "../serving/completion.ts";
import type { Store } from "../store/database.ts";

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
  registerShutdownGate(app);
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
  const auth = deps.store && deps.config ? await registerAuth(app, { store: deps.store, config: deps.config }) : null;
  registerHealth(app, deps);
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
  if (auth) {
    // The web app's API (conversations, its model list) and the app itself at `/`.
    registerConversations(app, {
      store: auth.store,
      router: deps.router,
      serving,
      staleStreamMs: deps.config?.conversations.staleStreamMs,
      flushIntervalMs: deps.config?.conversations.flushIntervalMs,
      ...(deps.config?.shutdownDrainMs !== undefined ? { drainMs: deps.config.shutdownDrainMs } : {}),
      // Answers outlive their tab: a session may leave as many running as one API key may open.
      ...(deps.limits ? { maxRunningPerUser: maxConcurrentPerKey(deps.limits) } : {}),
    });
    registerAppModels(app, { router: deps.router, serving });
  }
  await registerWebApp(app);
  return app;
}

/** The per-key concurrency cap in force (tightened in attack mode), as a reader for the web app's answers. */
function maxConcurrentPerKey(limits: Limits): () => Promise<number> {
  return async () => (await limits.inForce()).maxConcurrentPerKey;
}

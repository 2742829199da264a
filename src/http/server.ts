import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { ModelRouter } from "../engines/router.ts";
import { registerAttackModeGate, registerFloodGuard } from "../limits/httpGuards.ts";
import type { Limits } from "../limits/limits.ts";
import { guardConnections } from "../limits/requestHygiene.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { registerMetrics } from "../metrics/route.ts";
import { registerBillingRoutes, type BillingRoutesDeps } from "./app/billing.ts";
import { installErrorHandlers } from "./errors.ts";
import { registerHealth } from "./health.ts";
import { registerBalance } from "./openai/balance.ts";
import { registerChatCompletions, type ChatCompletionDeps, type CompletionRecord } from "./openai/chatCompletions.ts";
import { registerModels } from "./openai/models.ts";

export interface ServerDeps {
  router: ModelRouter;
  logger: Logger;
  bodyLimit: number;
  record?: (entry: CompletionRecord) => Promise<void>;
  /** Billing's admission hook for chat completions (src/http/openai/metering.ts). */
  admit?: ChatCompletionDeps["admit"];
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
    // Slowloris: a client must send its headers and body in bounded time (headers: guardConnections).
    requestTimeout: deps.limits?.config.requestTimeoutMs ?? 120_000,
    connectionTimeout: 0,
    keepAliveTimeout: 10_000,
    // Treat /v1/models and /v1/models/ alike, but nothing looser (no case folding).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, caseSensitive: true },
  });
  installErrorHandlers(app);
  if (deps.metrics) registerMetrics(app, { metrics: deps.metrics, token: deps.metricsToken });
  if (deps.limits) {
    const limits = deps.limits;
    guardConnections(app.server, { maxPerIp: limits.config.maxConnectionsPerIp, headersTimeoutMs: limits.config.headersTimeoutMs }, (reason) =>
      limits.noteRejection(reason),
    );
    // Before the auth hook, so a flood is refused before any credential lookup.
    registerFloodGuard(app, limits);
    registerAttackModeGate(app, limits);
  }
  registerHealth(app, deps);
  registerModels(app, { router: deps.router, startedAt: Date.now() });
  registerChatCompletions(app, deps);
  if (deps.billing) {
    registerBalance(app, deps.billing);
    registerBillingRoutes(app, deps.billing);
  }
  return app;
}

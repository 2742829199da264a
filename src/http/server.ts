import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { ModelRouter } from "../engines/router.ts";
import { installErrorHandlers } from "./errors.ts";
import { registerHealth } from "./health.ts";
import { registerChatCompletions, type CompletionRecord } from "./openai/chatCompletions.ts";
import { registerModels } from "./openai/models.ts";

export interface ServerDeps {
  router: ModelRouter;
  logger: Logger;
  bodyLimit: number;
  record?: (entry: CompletionRecord) => Promise<void>;
}

/** Builds the HTTP server: one Fastify app, thin routes per surface. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    // Slowloris: a client must send its headers and body in bounded time.
    requestTimeout: 120_000,
    connectionTimeout: 0,
    keepAliveTimeout: 10_000,
    // Treat /v1/models and /v1/models/ alike, but nothing looser (no case folding).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, caseSensitive: true },
    disableRequestLogging: false,
  });
  installErrorHandlers(app);
  registerHealth(app, deps);
  registerModels(app, { router: deps.router, startedAt: Date.now() });
  registerChatCompletions(app, deps);
  return app;
}

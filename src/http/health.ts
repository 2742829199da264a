import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../engines/router.ts";

/** GET /health: asks every engine for a real probe; 503 when any fails, so load balancers notice. */
export function registerHealth(app: FastifyInstance, deps: { router: ModelRouter }): void {
  app.get("/health", { config: { access: "public" } }, async (_request, reply) => {
    const health = await deps.router.health();
    return reply.status(health.ok ? 200 : 503).send({ status: health.ok ? "ok" : "degraded", engines: health.detail });
  });
}

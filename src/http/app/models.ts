import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../../engines/router.ts";
import { can, unauthenticated } from "../../policies/index.ts";

/**
 * GET /api/models: the models the signed-in user may chat with, for the web app's model picker,
 * with what the picker needs (whether the model reasons, so DeepThink can be offered or not).
 */
export function registerAppModels(app: FastifyInstance, deps: { router: ModelRouter }): void {
  app.get("/api/models", async (request) => {
    if (request.actor.kind !== "user") throw unauthenticated();
    const actor = request.actor;
    return {
      data: deps.router
        .models()
        .filter((m) => can(actor, "model.use", m.id))
        .map((m) => ({
          id: m.id,
          reasoning: m.reasoning,
          ...(m.contextLength ? { context_length: m.contextLength } : {}),
          ...(m.note ? { note: m.note } : {}),
        })),
    };
  });
}

import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../../engines/router.ts";
import { can, requireUser } from "../../policies/index.ts";
import type { Serving } from "../../serving/completion.ts";

/**
 * GET /api/models: the models the signed-in user may chat with (the `model.use` policy: key scope
 * and plan), for the web app's model picker, with what the picker needs (whether the model
 * reasons, so DeepThink can be offered or not).
 */
export function registerAppModels(app: FastifyInstance, deps: { router: ModelRouter; serving: Serving }): void {
  app.get("/api/models", async (request) => {
    const actor = requireUser(request.actor);
    const plan = (await deps.serving.deps.planOf?.(actor)) ?? null;
    return {
      data: deps.router
        .models()
        .filter((m) => can(actor, "model.use", { id: m.id, plan }))
        .map((m) => ({
          id: m.id,
          reasoning: m.reasoning,
          ...(m.contextLength ? { context_length: m.contextLength } : {}),
          ...(m.note ? { note: m.note } : {}),
        })),
    };
  });
}

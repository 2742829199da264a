import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../../engines/router.ts";
import { authorize, can } from "../../policies/index.ts";
import { presentModel } from "../../presenters/openai.ts";

/** GET /v1/models and /v1/models/:id: the models the caller may see (an API key's scope hides the rest). */
export function registerModels(app: FastifyInstance, deps: { router: ModelRouter; startedAt: number }): void {
  const created = Math.floor(deps.startedAt / 1000);
  app.get("/v1/models", async (request) => ({
    object: "list",
    data: deps.router
      .models()
      .filter((m) => can(request.actor, "model.read", { id: m.id, plan: null }))
      .map((m) => presentModel(m, created)),
  }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const model = deps.router.model(request.params.id);
    // Unknown and out-of-scope models are the same 404.
    authorize(request.actor, "model.read", model ? { id: model.id, plan: null } : null);
    return presentModel(model!, created);
  });
}

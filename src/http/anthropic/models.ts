import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../../engines/router.ts";
import { authorize, can } from "../../policies/index.ts";
import { presentModel } from "../../presenters/anthropic.ts";

/**
 * GET /anthropic/v1/models and /anthropic/v1/models/:id, in Anthropic's list shape: the models the
 * caller may see (an API key's scope hides the rest), as /v1/models lists them.
 */
export function registerAnthropicModels(scope: FastifyInstance, deps: { router: ModelRouter; startedAt: number }): void {
  const createdAt = new Date(deps.startedAt).toISOString();
  scope.get("/v1/models", async (request) => {
    const data = deps.router
      .models()
      .filter((m) => can(request.actor, "model.read", { id: m.id, plan: null }))
      .map((m) => presentModel(m, createdAt));
    return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
  });
  scope.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const model = deps.router.model(request.params.id);
    // Unknown and out-of-scope models are the same 404.
    authorize(request.actor, "model.read", model ? { id: model.id, plan: null } : null);
    return presentModel(model!, createdAt);
  });
}

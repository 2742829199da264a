import type { FastifyInstance } from "fastify";
import { latestPublishedSummaries, type PublishedSummary } from "../../audit/store.ts";
import type { ModelRouter } from "../../engines/router.ts";
import { can, requireUser } from "../../policies/index.ts";
import { presentAuditSummary } from "../../presenters/auditRun.ts";
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
    // What an admin chose to publish of each model's latest audit (src/audit): users see what they talk to.
    const audits = deps.serving.deps.db ? await latestPublishedSummaries(deps.serving.deps.db) : new Map<string, PublishedSummary>();
    return {
      data: deps.router
        .models()
        .filter((m) => can(actor, "model.use", { id: m.id, plan }))
        .map((m) => ({
          id: m.id,
          reasoning: m.reasoning,
          ...(m.contextLength ? { context_length: m.contextLength } : {}),
          ...(m.note ? { note: m.note } : {}),
          ...(audits.has(m.id) ? { audit: presentAuditSummary(audits.get(m.id)!) } : {}),
          // The moderation policies that check its answers (src/moderation), by name.
          moderation_policies: deps.serving.deps.moderation?.policyNames(m.id) ?? [],
        })),
    };
  });
}

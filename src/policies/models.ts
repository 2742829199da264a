import { isAdmin } from "../auth/actor.ts";
import { planAllowsModel } from "../billing/plans.ts";
import { ServiceError } from "../errors.ts";
import { definePolicy, type SignedInActor } from "./policy.ts";

/**
 * Who may use which model — the one decision, for /v1/models, completions, the web app's model
 * picker and billing alike. Two things limit it:
 * - an API key scoped to some models: to that key the others don't exist (404, the same as a
 *   model that isn't served);
 * - the caller's plan: a model outside it is visible but refused (403 model_not_allowed), so a
 *   user learns to change plan rather than wonder whether the model exists.
 */
export interface ModelSubject {
  id: string;
  /** The caller's plan; null for callers without one (the local operator) or when plans are off. */
  plan: { name: string; allowedModels: string[] | null } | null;
}

declare module "./policy.ts" {
  interface PolicyRegistry {
    model: { subject: ModelSubject; objectActions: "read" | "use"; classActions: never };
  }
}

function inScope(actor: SignedInActor, model: ModelSubject): boolean {
  if (actor.kind === "local") return true;
  return actor.modelScope == null || actor.modelScope.includes(model.id);
}

function inPlan(model: ModelSubject): boolean {
  return model.plan === null || planAllowsModel(model.plan, model.id);
}

definePolicy("model", {
  label: "Model",
  notFoundCode: "model_not_found",
  notFoundParam: "model",
  object: { read: inScope, use: (actor, model) => inScope(actor, model) && inPlan(model) },
  denied: {
    use: (_actor, model) =>
      new ServiceError("forbidden", `Your plan (${model.plan?.name ?? "none"}) does not include the model '${model.id}'.`, {
        code: "model_not_allowed",
        param: "model",
      }),
  },
});

// The local models themselves (Admin → Models, /api/admin/models): pulling files from the network,
// loading and unloading them (memory for everyone's answers), deleting files. Operators' work:
// admins only; everyone else is refused (403) whatever they name.
declare module "./policy.ts" {
  interface PolicyRegistry {
    localModels: { subject: never; objectActions: never; classActions: "manage" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("localModels", { label: "Local models", object: { read: admin }, class: { manage: admin } });

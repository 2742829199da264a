import { definePolicy } from "./policy.ts";

// Models are shared, but an API key may be scoped to some of them: to that key the others don't
// exist (404, the same as a model that isn't served).
declare module "./policy.ts" {
  interface PolicyRegistry {
    model: { subject: string; objectActions: "read" | "use"; classActions: never };
  }
}

function inScope(actor: Parameters<import("./policy.ts").ObjectRule<string>>[0], model: string): boolean {
  if (actor.kind === "local") return true;
  return actor.modelScope == null || actor.modelScope.includes(model);
}

definePolicy("model", {
  label: "Model",
  notFoundCode: "model_not_found",
  notFoundParam: "model",
  object: { read: inScope, use: inScope },
});

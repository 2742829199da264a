import { planHasFeature, type Plan } from "./plans.ts";
import { BillingRefusal } from "./refusals.ts";

/**
 * Plan features: what a plan's users may use beyond chat (`features` on the plan). Each gated
 * feature is also a meter of the same name, so what the plan allows is what the ledger prices.
 */
export const GATED_FEATURES = ["search", "documents"] as const;
export type GatedFeature = (typeof GATED_FEATURES)[number];

export function isGatedFeature(name: string): name is GatedFeature {
  return (GATED_FEATURES as readonly string[]).includes(name);
}

/**
 * Throws a `forbidden` ServiceError (403, code feature_not_allowed) unless `plan` includes
 * `feature`. Callers without a plan (the local operator) are not limited by one: don't call it.
 */
export function requireFeature(plan: Plan, feature: GatedFeature): void {
  if (!planHasFeature(plan, feature)) {
    throw new BillingRefusal(403, `Your plan (${plan.name}) does not include ${feature}.`, "feature_not_allowed");
  }
}

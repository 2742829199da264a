import type { Actor } from "../auth/actor.ts";
import type { SettledStatus } from "../billing/ledger.ts";
import type { BillingSubject } from "../billing/meter.ts";

/**
 * Who pays, from the actor auth set. The local operator (single-user mode) is metered, never
 * charged; so is a request with no actor at all (a bare server without accounts).
 */
export function billingSubject(actor: Actor | undefined): BillingSubject {
  if (!actor || actor.kind === "local") return { kind: "local" };
  if (actor.kind === "anonymous") return { kind: "anonymous" };
  return { kind: "user", userId: actor.userId, apiKeyId: actor.apiKeyId, planId: actor.planId };
}

/** completed (200), stopped (499: the client stopped or left, pays for what was generated), failed. */
export function settledStatus(httpStatus: number): SettledStatus {
  if (httpStatus === 499) return "stopped";
  return httpStatus < 400 ? "completed" : "failed";
}

import { isAdmin } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Billing: everyone signed in sees their own balance and usage (the routes scope every query to
// the caller) and the price list (what a request will cost is no secret from the one paying);
// changing prices, plans, credits and the overview across users are for admins.
declare module "./policy.ts" {
  interface PolicyRegistry {
    billing: { subject: never; objectActions: never; classActions: "viewOwn" | "viewPrices" | "manage" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("billing", {
  label: "Billing",
  object: { read: admin },
  class: { viewOwn: (actor) => actor.kind === "user", viewPrices: (actor) => actor.kind === "user", manage: admin },
});

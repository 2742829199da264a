import { isAdmin } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Moderation: anyone who may call the API may ask the configured policies about a text
// (POST /v1/moderations); only admins list the interventions (they name users and may quote
// withheld text) and the policies' settings.
declare module "./policy.ts" {
  interface PolicyRegistry {
    moderation: { subject: never; objectActions: never; classActions: "check" | "list" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("moderation", { label: "Moderation", object: { read: admin }, class: { check: () => true, list: admin } });

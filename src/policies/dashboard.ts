import { isAdmin } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// The live dashboard (GET /api/admin/dashboard): the service's load per model, engine and replica.
// Operators' view only: it names every model and fleet replica, and shows traffic levels.
declare module "./policy.ts" {
  interface PolicyRegistry {
    dashboard: { subject: never; objectActions: never; classActions: "read" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("dashboard", { label: "Dashboard", object: { read: admin }, class: { read: admin } });

import { isAdmin } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Service-wide settings (sign-up mode, attack mode) and the audit log of admin actions.
declare module "./policy.ts" {
  interface PolicyRegistry {
    settings: { subject: never; objectActions: never; classActions: "read" | "update" };
    auditLog: { subject: never; objectActions: never; classActions: "list" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("settings", { label: "Settings", object: { read: admin }, class: { read: admin, update: admin } });
definePolicy("auditLog", { label: "Audit log entry", object: { read: admin }, class: { list: admin } });

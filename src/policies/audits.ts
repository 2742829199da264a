import { isAdmin } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Model audits (src/audit, /api/admin/audits): running them spends the audit budget, and their
// reports name every model and quote every answer, so only admins see, start, cancel, resume or
// publish them. Users see only what an admin published, with the model list (GET /api/models).
declare module "./policy.ts" {
  interface PolicyRegistry {
    auditRun: { subject: { id: string }; objectActions: "read" | "update"; classActions: "list" | "create" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("auditRun", {
  label: "Audit run",
  object: { read: admin, update: admin },
  class: { list: admin, create: admin },
});

import { isAdmin } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Access codes are an admin tool: to anyone else they don't exist (404 by id, 403 for the list).
declare module "./policy.ts" {
  interface PolicyRegistry {
    accessCode: { subject: { id: string }; objectActions: "read" | "revoke"; classActions: "list" | "create" };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("accessCode", {
  label: "Access code",
  object: { read: admin, revoke: admin },
  class: { list: admin, create: admin },
});

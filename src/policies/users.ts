import { isAdmin, isOwner } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Accounts: a user sees their own; admins see and manage everyone.
declare module "./policy.ts" {
  interface PolicyRegistry {
    user: {
      subject: { id: string };
      objectActions: "read" | "approve" | "disable" | "enable" | "setRole";
      classActions: "list" | "create";
    };
  }
}

const admin = (actor: Parameters<typeof isAdmin>[0]) => isAdmin(actor);

definePolicy("user", {
  label: "User",
  object: {
    read: (actor, user) => isOwner(actor, user.id) || isAdmin(actor),
    approve: admin,
    disable: admin,
    enable: admin,
    setRole: admin,
  },
  class: { list: admin, create: admin },
});

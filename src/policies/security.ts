import { isAdmin, isOwner } from "../auth/actor.ts";
import { ServiceError } from "../errors.ts";
import { definePolicy } from "./policy.ts";

// An account's own security settings (password, second factor, recovery codes): its owner only —
// admins neither see nor change another account's second factor. Admins issue password-reset links
// for other accounts (their own password is changed with the current one, in their settings).
declare module "./policy.ts" {
  interface PolicyRegistry {
    security: { subject: { id: string }; objectActions: "read" | "update"; classActions: never };
    passwordReset: { subject: { id: string }; objectActions: "read" | "issue"; classActions: never };
  }
}

definePolicy("security", {
  label: "User",
  object: {
    read: (actor, user) => isOwner(actor, user.id),
    update: (actor, user) => isOwner(actor, user.id),
  },
});

definePolicy("passwordReset", {
  label: "User",
  object: {
    read: (actor) => isAdmin(actor),
    issue: (actor, user) => isAdmin(actor) && actor.userId !== user.id,
  },
  denied: {
    issue: () => new ServiceError("forbidden", "Change your own password in Settings → Security (it needs the current one).", { code: "cannot_reset_own_password" }),
  },
});

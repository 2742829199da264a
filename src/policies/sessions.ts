import { isOwner } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Sign-in sessions: each user sees and ends their own.
declare module "./policy.ts" {
  interface PolicyRegistry {
    session: { subject: { user_id: string }; objectActions: "read" | "delete"; classActions: "list" };
  }
}

definePolicy("session", {
  label: "Session",
  object: {
    read: (actor, session) => isOwner(actor, session.user_id),
    delete: (actor, session) => isOwner(actor, session.user_id),
  },
  class: { list: (actor) => actor.kind === "user" },
});

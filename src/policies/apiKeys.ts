import { isOwner } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// API keys belong to one user; nobody else (admins included) sees them.
declare module "./policy.ts" {
  interface PolicyRegistry {
    apiKey: { subject: { user_id: string }; objectActions: "read" | "update" | "delete"; classActions: "create" | "list" };
  }
}

const ownKey = (actor: Parameters<typeof isOwner>[0], key: { user_id: string }) => isOwner(actor, key.user_id);

definePolicy("apiKey", {
  label: "API key",
  object: { read: ownKey, update: ownKey, delete: ownKey },
  class: {
    // Keys are personal: the local single-user actor has no account to hang them on.
    create: (actor) => actor.kind === "user",
    list: (actor) => actor.kind === "user",
  },
});

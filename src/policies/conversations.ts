import { isOwner } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// Conversations are private to their owner: to everyone else, admins included, they don't exist.
// Their messages are reached only through the conversation, so this one policy guards both.
declare module "./policy.ts" {
  interface PolicyRegistry {
    conversation: {
      subject: { user_id: string };
      objectActions: "read" | "update" | "delete" | "reply" | "share";
      classActions: "list" | "create";
    };
  }
}

const own = (actor: Parameters<typeof isOwner>[0], conversation: { user_id: string }) => isOwner(actor, conversation.user_id);

definePolicy("conversation", {
  label: "Conversation",
  // Sharing publishes the text under a link: the owner's decision alone.
  object: { read: own, update: own, delete: own, reply: own, share: own },
  class: {
    // Conversations hang on an account: the local single-user actor (no account) has none.
    list: (actor) => actor.kind === "user",
    create: (actor) => actor.kind === "user",
  },
});

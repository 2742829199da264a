import { isOwner } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// A conversation's read-only links: only the conversation's owner lists and revokes them (to
// everyone else, admins included, they don't exist). Viewing a link needs no policy: the token is
// the permission (src/chat/shares.ts). Making one is `conversation.share` (conversations.ts).
declare module "./policy.ts" {
  interface PolicyRegistry {
    conversationShare: {
      subject: { user_id: string };
      objectActions: "read" | "revoke";
      classActions: never;
    };
  }
}

const own = (actor: Parameters<typeof isOwner>[0], share: { user_id: string }) => isOwner(actor, share.user_id);

definePolicy("conversationShare", {
  label: "Link",
  object: { read: own, revoke: own },
});

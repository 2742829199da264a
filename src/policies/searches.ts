import { isOwner } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

// A user's search history (src/search/history.ts) is private to them: to everyone else, admins
// included, a search doesn't exist (404), so its id leaks nothing.
declare module "./policy.ts" {
  interface PolicyRegistry {
    search: { subject: { user_id: string }; objectActions: "read" | "delete"; classActions: "list" };
  }
}

const own = (actor: Parameters<typeof isOwner>[0], search: { user_id: string }) => isOwner(actor, search.user_id);

definePolicy("search", {
  label: "Search",
  object: { read: own, delete: own },
  // History hangs on an account: the local single-user actor has none.
  class: { list: (actor) => actor.kind === "user" },
});

import type { Actor } from "../auth/actor.ts";
import { definePolicy } from "./policy.ts";

/**
 * Uploaded documents (issue 15, src/commands/files.ts) are private to their owner: to everyone
 * else, admins included, they don't exist (404, never 403), so a file id leaks nothing. API keys
 * carry a model scope only (no per-resource scopes exist), so a key acts for its user here.
 *
 * The local single-user operator (loopback, no account yet) owns the files it uploads under
 * `LOCAL_FILE_OWNER`; once accounts exist that actor is gone and those files are nobody's.
 */
export const LOCAL_FILE_OWNER = "local";

declare module "./policy.ts" {
  interface PolicyRegistry {
    file: { subject: { user_id: string }; objectActions: "read" | "delete"; classActions: "create" | "list" };
  }
}

/** The id files of `actor` are stored under; null for an actor that cannot own files. */
export function fileOwnerId(actor: Actor): string | null {
  if (actor.kind === "user") return actor.userId;
  if (actor.kind === "local") return LOCAL_FILE_OWNER;
  return null;
}

const own = (actor: Actor, file: { user_id: string }) => fileOwnerId(actor) === file.user_id;
const hasOwner = (actor: Actor) => fileOwnerId(actor) !== null;

definePolicy("file", {
  label: "File",
  object: { read: own, delete: own },
  class: { create: hasOwner, list: hasOwner },
});

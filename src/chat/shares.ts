import type { Kysely, Selectable } from "kysely";
import { randomString, sha256Hex } from "../auth/secrets.ts";
import { newId } from "../store/ids.ts";
import type { ConversationShareTable, Database } from "../store/schema.ts";
import { listMessages, type Message } from "./conversations.ts";
import { pathTo } from "./messageTree.ts";

/**
 * Read-only links to a conversation (`/s/<token>`). A share is a SNAPSHOT of the branch shown when
 * the link was made: the path from the first message to the newest finished message of that
 * branch, under the title it had. Messages are never rewritten once finished (edits and
 * regenerations add siblings), so the snapshot is just that last message's id; whatever is said
 * after sharing is not shared (a new link shares it). The token is shown once and stored only as
 * its SHA-256, like API keys; revoking a link, or deleting the conversation, makes it unknown at
 * once. Who may make, list and revoke links: src/policies/conversationShares.ts; the changes
 * themselves: src/commands/conversationShares.ts.
 */

export type ConversationShare = Selectable<ConversationShareTable>;

/** 43 base62 characters: about 256 bits, never guessed. */
const TOKEN_LENGTH = 43;
/** What a token looks like; anything else is answered 404 without a lookup. */
export const SHARE_TOKEN_PATTERN = /^[0-9A-Za-z]{43}$/;
/** Live links one conversation may have at once. */
export const MAX_LIVE_SHARES = 20;

export function newShareToken(): string {
  return randomString(TOKEN_LENGTH);
}

export async function insertShare(
  db: Kysely<Database>,
  input: { conversationId: string; userId: string; leafMessageId: string; title: string | null; includeReasoning: boolean; showAuthor: boolean },
  now: number = Date.now(),
): Promise<{ token: string; share: ConversationShare }> {
  const token = newShareToken();
  const share: ConversationShare = {
    id: newId(now),
    conversation_id: input.conversationId,
    user_id: input.userId,
    token_hash: sha256Hex(token),
    leaf_message_id: input.leafMessageId,
    title: input.title,
    include_reasoning: input.includeReasoning ? 1 : 0,
    show_author: input.showAuthor ? 1 : 0,
    created_at: now,
    revoked_at: null,
  };
  await db.insertInto("conversation_shares").values(share).execute();
  return { token, share };
}

export async function findShare(db: Kysely<Database>, id: string): Promise<ConversationShare | undefined> {
  return db.selectFrom("conversation_shares").selectAll().where("id", "=", id).executeTakeFirst();
}

/** A conversation's live links, newest first. */
export async function listLiveShares(db: Kysely<Database>, conversationId: string): Promise<ConversationShare[]> {
  return db
    .selectFrom("conversation_shares")
    .selectAll()
    .where("conversation_id", "=", conversationId)
    .where("revoked_at", "is", null)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .execute();
}

/** The live share a link's token opens; undefined for a revoked, unknown or malformed one. */
export async function findLiveShareByToken(db: Kysely<Database>, token: string): Promise<ConversationShare | undefined> {
  if (!SHARE_TOKEN_PATTERN.test(token)) return undefined;
  return db
    .selectFrom("conversation_shares")
    .selectAll()
    .where("token_hash", "=", sha256Hex(token))
    .where("revoked_at", "is", null)
    .executeTakeFirst();
}

/**
 * The message a new share ends at: the newest finished message on the branch up to `leafId`.
 * An answer still being written, or one that failed with nothing written (a retry would rewrite
 * it in place), is left out, so the snapshot never changes afterwards.
 */
export function shareLeaf(messages: Message[], leafId: string | null): Message | undefined {
  const path = pathTo(messages, leafId);
  return path.findLast((m) => m.status !== "streaming" && !(m.status === "error" && m.content === "" && m.reasoning === ""));
}

/** The shared messages: the branch up to the share's last message, with nothing written left out. */
export async function sharedMessages(db: Kysely<Database>, share: ConversationShare): Promise<Message[]> {
  const path = pathTo(await listMessages(db, share.conversation_id), share.leaf_message_id);
  return path.filter((m) => m.content !== "" || (share.include_reasoning === 1 && m.reasoning !== ""));
}

/** The owner's user name, for a share that shows it. */
export async function shareAuthor(db: Kysely<Database>, share: ConversationShare): Promise<string | null> {
  if (share.show_author !== 1) return null;
  const row = await db.selectFrom("users").select("username").where("id", "=", share.user_id).executeTakeFirst();
  return row?.username ?? null;
}

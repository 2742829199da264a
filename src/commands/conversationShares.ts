/**
 * Making and revoking a conversation's read-only links (src/chat/shares.ts), each with its audit
 * row in the same transaction. The caller has authorized the owner (src/policies).
 */
import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import { listMessages, type Conversation } from "../chat/conversations.ts";
import { defaultLeaf } from "../chat/messageTree.ts";
import { insertShare, MAX_LIVE_SHARES, shareLeaf, type ConversationShare } from "../chat/shares.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";

export interface ShareContext {
  /** The owner, acting. */
  userId: string;
  ip: string | null;
}

/**
 * Shares the conversation's current branch as it stands (see shares.ts: a snapshot). Returns the
 * token: shown once, stored only as its hash.
 */
export async function shareConversation(
  db: Kysely<Database>,
  by: ShareContext,
  conversation: Conversation,
  options: { includeReasoning: boolean; showAuthor: boolean },
  now: number = Date.now(),
): Promise<{ token: string; share: ConversationShare }> {
  const messages = await listMessages(db, conversation.id);
  const current = conversation.current_message_id && messages.some((m) => m.id === conversation.current_message_id) ? conversation.current_message_id : (defaultLeaf(messages)?.id ?? null);
  const leaf = shareLeaf(messages, current);
  if (!leaf) throw new ServiceError("conflict", "There is nothing to share yet: wait for the first answer.", { code: "nothing_to_share" });
  return db.transaction().execute(async (trx) => {
    // Write first, then count (see commands/apiKeys.ts: on SQLite a write-first transaction waits for the lock).
    const created = await insertShare(
      trx,
      { conversationId: conversation.id, userId: by.userId, leafMessageId: leaf.id, title: conversation.title, ...options },
      now,
    );
    const live = await trx
      .selectFrom("conversation_shares")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("conversation_id", "=", conversation.id)
      .where("revoked_at", "is", null)
      .executeTakeFirstOrThrow();
    if (Number(live.n) > MAX_LIVE_SHARES) {
      throw new ServiceError("conflict", `This conversation already has ${MAX_LIVE_SHARES} live links; revoke one first.`, { code: "too_many_shares" });
    }
    await writeAudit(
      trx,
      {
        actorUserId: by.userId,
        action: "conversation_share.create",
        targetType: "conversation_share",
        targetId: created.share.id,
        details: { conversation_id: conversation.id, leaf_message_id: leaf.id, include_reasoning: options.includeReasoning, show_author: options.showAuthor },
        ip: by.ip,
      },
      now,
    );
    return created;
  });
}

/** Revokes a live link: it answers 404 from the next request on. */
export async function revokeShare(db: Kysely<Database>, by: ShareContext, share: ConversationShare, now: number = Date.now()): Promise<ConversationShare> {
  return db.transaction().execute(async (trx) => {
    // Only a live row changes: of two revokes racing, one wins and the other is told.
    const result = await trx.updateTable("conversation_shares").set({ revoked_at: now }).where("id", "=", share.id).where("revoked_at", "is", null).executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) throw new ServiceError("conflict", "This link was already revoked.", { code: "already_revoked" });
    await writeAudit(
      trx,
      {
        actorUserId: by.userId,
        action: "conversation_share.revoke",
        targetType: "conversation_share",
        targetId: share.id,
        details: { conversation_id: share.conversation_id },
        ip: by.ip,
      },
      now,
    );
    return { ...share, revoked_at: now };
  });
}

import type { Kysely, Selectable } from "kysely";
import { afterCursor, toPage } from "../auth/cursor.ts";
import type { Database, ModerationEventTable } from "../store/schema.ts";
import { newId } from "../store/ids.ts";
import type { Intervention } from "./types.ts";

export type ModerationEvent = Selectable<ModerationEventTable>;

/** Who and what an intervention belongs to, as the pipeline knows it at settlement. */
export interface InterventionContext {
  model: string;
  userId: string | null;
  apiKeyId: string | null;
  /** Web-app answers: the conversation and the answer it is shown on (null for a refused question). */
  conversationId: string | null;
  messageId: string | null;
}

/** Stores interventions (inside the settlement transaction: with the request log row, or not at all). */
export async function insertInterventions(db: Kysely<Database>, interventions: readonly Intervention[], context: InterventionContext, now = Date.now()): Promise<void> {
  if (interventions.length === 0) return;
  await db
    .insertInto("moderation_events")
    .values(
      interventions.map((i) => ({
        id: newId(now),
        created_at: now,
        model: context.model,
        policy: i.policy,
        action: i.action,
        stage: i.stage,
        channel: i.channel,
        offset_chars: i.offset,
        reason: i.reason,
        source: i.source,
        matched: i.matched,
        user_id: context.userId,
        api_key_id: context.apiKeyId,
        conversation_id: context.conversationId,
        message_id: context.messageId,
      })),
    )
    .execute();
}

/** Interventions newest first, keyset-paged; optionally of one policy. */
export async function listInterventions(
  db: Kysely<Database>,
  opts: { limit: number; cursor?: string | undefined; policy?: string | undefined },
): Promise<{ items: ModerationEvent[]; nextCursor: string | null }> {
  let q = db.selectFrom("moderation_events").selectAll();
  if (opts.policy) q = q.where("policy", "=", opts.policy);
  if (opts.cursor) q = q.where(afterCursor(opts.cursor));
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(opts.limit + 1).execute();
  return toPage(rows, opts.limit);
}

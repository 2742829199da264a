import type { Kysely, Transaction } from "kysely";
import { newId } from "../store/ids.ts";
import type { Database, SearchTable } from "../store/schema.ts";

/**
 * Each user's search history (migration 0570): one row per search run, written by the serving
 * pipeline with the request's settlement. Nothing here checks who asks: the routes show a user
 * only their own rows (another user's id looks missing).
 */

export type SearchRow = SearchTable;

/** Longest query kept, in characters. */
const MAX_QUERY_CHARS = 1000;

export async function insertSearches(
  db: Kysely<Database> | Transaction<Database>,
  userId: string,
  queries: ReadonlyArray<{ kind: "web" | "documents"; query: string; results: number }>,
  context: { conversationId: string | null; messageId: string | null },
  now: number = Date.now(),
): Promise<void> {
  if (queries.length === 0) return;
  await db
    .insertInto("searches")
    .values(
      queries.map((q) => ({
        id: newId(now),
        user_id: userId,
        query: q.query.slice(0, MAX_QUERY_CHARS),
        kind: q.kind,
        results: q.results,
        conversation_id: context.conversationId,
        message_id: context.messageId,
        created_at: now,
      })),
    )
    .execute();
}

/** One user's searches, newest first. */
export async function listSearches(db: Kysely<Database>, userId: string, opts: { limit?: number } = {}): Promise<SearchRow[]> {
  const limit = Math.max(1, Math.min(500, Math.floor(opts.limit ?? 100)));
  return db.selectFrom("searches").selectAll().where("user_id", "=", userId).orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

/** A search by id, any user's (the route checks the owner). */
export async function getSearch(db: Kysely<Database>, id: string): Promise<SearchRow | undefined> {
  return db.selectFrom("searches").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Deletes a search from its owner's history; true when there was one. */
export async function deleteSearch(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom("searches").where("id", "=", id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

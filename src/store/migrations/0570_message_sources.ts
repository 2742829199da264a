import type { Kysely } from "kysely";

// Search (issue 15), what an answer was built from and who searched what:
//
// - `messages.sources`: JSON of the sources an answer cites (src/search/source.ts, as the app API
//   presents them), stored with the answer in the settlement transaction so they show after a
//   reload; null for answers without search.
// - `plans.daily_search_quota`: web searches each user of the plan may run per local day of the
//   billing time zone; null (every existing plan) is unlimited.
// - `searches`: each user's search history, one row per search run (web or documents), written
//   with the request's settlement; `conversation_id` / `message_id` name the web app's answer
//   (null for API requests). Private to the user (others' rows are 404).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("messages").addColumn("sources", "text").execute();
  await db.schema.alterTable("plans").addColumn("daily_search_quota", "bigint").execute();
  await db.schema
    .createTable("searches")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("query", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("results", "integer", (c) => c.notNull())
    .addColumn("conversation_id", "text")
    .addColumn("message_id", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  // The history page lists one user's searches, newest first.
  await db.schema.createIndex("searches_user_idx").on("searches").columns(["user_id", "created_at"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("searches").execute();
  await db.schema.alterTable("plans").dropColumn("daily_search_quota").execute();
  await db.schema.alterTable("messages").dropColumn("sources").execute();
}

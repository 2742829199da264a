import type { Kysely } from "kysely";

// Moderation (src/moderation): every intervention of an operator policy — an input refused, an
// answer flagged or withheld — from every surface (/v1, /anthropic, the web app), for the admin
// list; and on web-app answers, the moderation users see with the message (`messages.moderation`,
// JSON), so a reload shows the same notice over the same kept text.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("moderation_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("policy", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("stage", "text", (c) => c.notNull())
    .addColumn("channel", "text")
    .addColumn("offset_chars", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("matched", "text")
    .addColumn("user_id", "text")
    .addColumn("api_key_id", "text")
    .addColumn("conversation_id", "text")
    .addColumn("message_id", "text")
    .execute();
  // The admin list pages newest first; per policy for a filter.
  await db.schema.createIndex("moderation_events_created_at_idx").on("moderation_events").columns(["created_at", "id"]).execute();
  await db.schema.createIndex("moderation_events_policy_idx").on("moderation_events").columns(["policy", "created_at"]).execute();
  await db.schema.alterTable("messages").addColumn("moderation", "text").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("messages").dropColumn("moderation").execute();
  await db.schema.dropTable("moderation_events").execute();
}

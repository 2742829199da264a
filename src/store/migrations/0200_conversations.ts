import type { Kysely } from "kysely";

// Conversations of the web app and their messages. Messages form a tree (parent_id): editing a user
// message or regenerating an answer adds a sibling branch instead of overwriting history, and
// `current_message_id` remembers the leaf of the branch the user last looked at.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("conversations")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull())
    // Null until the first exchange names it (or the user renames it).
    .addColumn("title", "text")
    .addColumn("model", "text")
    .addColumn("current_message_id", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  // The sidebar: one user's conversations, most recently active first.
  await db.schema.createIndex("conversations_user_updated_idx").on("conversations").columns(["user_id", "updated_at", "id"]).execute();

  await db.schema
    .createTable("messages")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("conversation_id", "text", (c) => c.notNull().references("conversations.id").onDelete("cascade"))
    .addColumn("parent_id", "text")
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("content", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("reasoning", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("model", "text")
    .addColumn("thinking", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("error", "text")
    .addColumn("prompt_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("completion_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reasoning_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("ttft_ms", "bigint")
    .addColumn("reasoning_ms", "bigint")
    .addColumn("total_ms", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("messages_conversation_idx").on("messages").columns(["conversation_id", "created_at", "id"]).execute();
  // The start-up sweep looks for messages left streaming by a process that died.
  await db.schema.createIndex("messages_status_idx").on("messages").columns(["status", "updated_at"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("messages").execute();
  await db.schema.dropTable("conversations").execute();
}

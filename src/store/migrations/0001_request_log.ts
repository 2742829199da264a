import type { Kysely } from "kysely";

// Migrations take Kysely<any>: they describe the schema as it was at that version, and must not
// change meaning when schema.ts evolves later.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("request_log")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("engine", "text", (c) => c.notNull())
    .addColumn("status", "integer", (c) => c.notNull())
    .addColumn("error_code", "text")
    .addColumn("stream", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("prompt_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("completion_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reasoning_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("cache_hit_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("cache_miss_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("queue_ms", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("ttft_ms", "bigint")
    .addColumn("total_ms", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("user_id", "text")
    .addColumn("api_key_id", "text")
    .addColumn("client_ip", "text")
    .execute();

  // Listing newest first (admin view, paging) and per-user / per-key usage over time.
  await db.schema.createIndex("request_log_created_at_idx").on("request_log").columns(["created_at", "id"]).execute();
  await db.schema.createIndex("request_log_user_idx").on("request_log").columns(["user_id", "created_at"]).execute();
  await db.schema.createIndex("request_log_api_key_idx").on("request_log").columns(["api_key_id", "created_at"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("request_log").execute();
}

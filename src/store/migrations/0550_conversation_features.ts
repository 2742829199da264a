import { PostgresAdapter, sql, type Kysely } from "kysely";

// The chat's conversation features (issue 13): per-conversation settings, pins, read-only share
// links, and full-text search over message text.
//
// - `conversations.settings`: JSON of the reply settings (system prompt, temperature, answer
//   length, thinking budget; src/chat/conversationSettings.ts); null = the model's defaults.
// - `conversations.pinned_at`: when the owner pinned it (pinned conversations list first); null = not pinned.
// - `conversation_shares`: read-only links. Only the SHA-256 of the link's token is stored (like
//   API keys); a share is a snapshot of one branch (up to `leaf_message_id`, title as it was), and
//   revoking it (or deleting the conversation: cascade) makes the link answer 404 at once.
//
// Full-text search is the one place this schema needs each database's own SQL (the schema
// builder has no full-text index); both index the same rows — every message not `streaming` (a
// streaming answer's text is rewritten every half second; it is indexed once it ends) — and
// src/chat/search.ts queries them with the same semantics:
// - SQLite: an FTS5 external-content table over `messages` (keyed by the table's rowid, which the
//   online backup keeps), kept in sync by triggers on insert, update and delete. The unicode61
//   tokenizer without diacritic folding, to match PostgreSQL's `simple` configuration.
// - PostgreSQL: a GIN expression index on to_tsvector('simple', content) (no stemming, no stop
//   words: the same words as FTS5's), partial like the SQLite triggers.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("conversations").addColumn("settings", "text").execute();
  await db.schema.alterTable("conversations").addColumn("pinned_at", "bigint").execute();

  await db.schema
    .createTable("conversation_shares")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("conversation_id", "text", (c) => c.notNull().references("conversations.id").onDelete("cascade"))
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("leaf_message_id", "text", (c) => c.notNull())
    .addColumn("title", "text")
    .addColumn("include_reasoning", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("show_author", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("revoked_at", "bigint")
    .execute();
  // The share menu lists a conversation's live links.
  await db.schema.createIndex("conversation_shares_conversation_idx").on("conversation_shares").columns(["conversation_id", "created_at"]).execute();

  if (isPostgres(db)) {
    await sql`create index messages_content_search_idx on messages using gin (to_tsvector('simple'::regconfig, content)) where status <> 'streaming'`.execute(db);
    return;
  }
  await sql`create virtual table messages_fts using fts5(content, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')`.execute(db);
  // External content: the index holds only what the triggers put in, so a row leaves it with the
  // exact text it went in with ('delete' needs the old values).
  await sql`create trigger messages_fts_insert after insert on messages when new.status <> 'streaming' begin
    insert into messages_fts(rowid, content) values (new.rowid, new.content);
  end`.execute(db);
  await sql`create trigger messages_fts_delete after delete on messages when old.status <> 'streaming' begin
    insert into messages_fts(messages_fts, rowid, content) values ('delete', old.rowid, old.content);
  end`.execute(db);
  await sql`create trigger messages_fts_update after update of content, status on messages begin
    insert into messages_fts(messages_fts, rowid, content) select 'delete', old.rowid, old.content where old.status <> 'streaming';
    insert into messages_fts(rowid, content) select new.rowid, new.content where new.status <> 'streaming';
  end`.execute(db);
  // The messages written before this migration.
  await sql`insert into messages_fts(rowid, content) select rowid, content from messages where status <> 'streaming'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) {
    await sql`drop index if exists messages_content_search_idx`.execute(db);
  } else {
    for (const trigger of ["messages_fts_insert", "messages_fts_delete", "messages_fts_update"]) await sql`drop trigger if exists ${sql.raw(trigger)}`.execute(db);
    await sql`drop table if exists messages_fts`.execute(db);
  }
  await db.schema.dropTable("conversation_shares").execute();
  await db.schema.alterTable("conversations").dropColumn("pinned_at").execute();
  await db.schema.alterTable("conversations").dropColumn("settings").execute();
}

function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

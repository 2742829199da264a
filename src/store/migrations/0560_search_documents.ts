import { PostgresAdapter, sql, type Kysely } from "kysely";

// Documents users upload for search (issue 15): the file, its bytes, and its chunks with a lexical
// index over them (src/search/store/).
//
// - `files`: one upload. `status` is 'processing' while it is extracted and indexed in the
//   background, then 'processed' or 'error' (with `error` in words for the user). Progress:
//   `chunks_total` (null until the text is chunked) and `chunks_indexed` (bumped by every batch of
//   chunks written), so a chat can start before the end and say how much it could read.
//   `filename` is only ever a label: the bytes never touch the filesystem under that name.
// - `file_blobs`: the bytes themselves, in the database (blob / bytea), so several gateways behind
//   one database share them without a shared disk. Kept apart from `files` so listing files never
//   reads the bytes.
// - `file_chunks`: the extracted text cut at heading/paragraph boundaries, with the offsets into
//   the extracted text that citations point at. `user_id` is copied from the file so search
//   filters by owner without a join first.
//
// The lexical index needs each database's own SQL (the schema builder has no full-text index), as
// in 0550, with the same words on both (no stemming, no stop words, case folded, accents kept):
// - SQLite: an FTS5 external-content table over `file_chunks` (heading and text), keyed by the
//   table's rowid (the online backup keeps it; nothing here VACUUMs), kept in sync by triggers.
//   Ranked with bm25().
// - PostgreSQL: a stored generated tsvector column with a GIN index. Stored rather than an
//   expression index because ranking (ts_rank_cd) needs the vector of every matching row: computing
//   it at query time would re-tokenize each candidate chunk on every search.

export async function up(db: Kysely<any>): Promise<void> {
  const postgres = isPostgres(db);
  await db.schema
    .createTable("files")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("filename", "text", (c) => c.notNull())
    .addColumn("mime", "text", (c) => c.notNull())
    .addColumn("bytes", "bigint", (c) => c.notNull())
    .addColumn("sha256", "text", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("error", "text")
    .addColumn("chunks_total", "integer")
    .addColumn("chunks_indexed", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  // A user's files, newest first (the list, and the sum of stored bytes for the quota).
  await db.schema.createIndex("files_user_created_idx").on("files").columns(["user_id", "created_at", "id"]).execute();

  await db.schema
    .createTable("file_blobs")
    .addColumn("file_id", "text", (c) => c.primaryKey().references("files.id").onDelete("cascade"))
    .addColumn("content", postgres ? "bytea" : "blob", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("file_chunks")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("file_id", "text", (c) => c.notNull().references("files.id").onDelete("cascade"))
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("ordinal", "integer", (c) => c.notNull())
    .addColumn("heading", "text")
    .addColumn("text", "text", (c) => c.notNull())
    .addColumn("start_offset", "integer", (c) => c.notNull())
    .addColumn("end_offset", "integer", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("file_chunks_file_ordinal_idx").on("file_chunks").columns(["file_id", "ordinal"]).unique().execute();
  await db.schema.createIndex("file_chunks_user_idx").on("file_chunks").columns(["user_id", "file_id"]).execute();

  if (postgres) {
    await sql`alter table file_chunks add column search_vector tsvector
      generated always as (to_tsvector('simple'::regconfig, coalesce(heading, '') || ' ' || text)) stored`.execute(db);
    await sql`create index file_chunks_search_idx on file_chunks using gin (search_vector)`.execute(db);
    return;
  }
  await sql`create virtual table file_chunks_fts using fts5(heading, text, content='file_chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')`.execute(db);
  // External content: the index holds only what the triggers put in, so a row leaves it with the
  // exact text it went in with ('delete' needs the old values). Deleting a file cascades here, and
  // SQLite fires these triggers for cascaded deletes too.
  await sql`create trigger file_chunks_fts_insert after insert on file_chunks begin
    insert into file_chunks_fts(rowid, heading, text) values (new.rowid, new.heading, new.text);
  end`.execute(db);
  await sql`create trigger file_chunks_fts_delete after delete on file_chunks begin
    insert into file_chunks_fts(file_chunks_fts, rowid, heading, text) values ('delete', old.rowid, old.heading, old.text);
  end`.execute(db);
  await sql`create trigger file_chunks_fts_update after update of heading, text on file_chunks begin
    insert into file_chunks_fts(file_chunks_fts, rowid, heading, text) values ('delete', old.rowid, old.heading, old.text);
    insert into file_chunks_fts(rowid, heading, text) values (new.rowid, new.heading, new.text);
  end`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (!isPostgres(db)) {
    for (const trigger of ["file_chunks_fts_insert", "file_chunks_fts_delete", "file_chunks_fts_update"]) await sql`drop trigger if exists ${sql.raw(trigger)}`.execute(db);
    await sql`drop table if exists file_chunks_fts`.execute(db);
  }
  await db.schema.dropTable("file_chunks").execute();
  await db.schema.dropTable("file_blobs").execute();
  await db.schema.dropTable("files").execute();
}

function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

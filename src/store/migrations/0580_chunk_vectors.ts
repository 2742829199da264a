import { PostgresAdapter, type Kysely } from "kysely";

// Embedding vectors of documents' chunks, for semantic retrieval (issue 15; src/search/store/vectors.ts).
//
// - One row per chunk and embedding model: `chunk_id` is the key (a chunk is embedded by the one
//   model configured as `search.embeddingModel`; `model` and `dims` say which, so a change of model
//   is noticed and the old vectors are ignored rather than compared with new ones).
// - `vector`: little-endian float32s (blob / bytea), `dims` of them — compact, and the same bytes
//   on both databases. The database is the truth; each process builds its own in-memory HNSW index
//   from these rows (src/search/vectorIndex.ts), so several gateways on one database agree.
// - The chunk's row owns the vector: deleting a chunk (a file deleted, re-indexed or failed)
//   deletes its vectors by cascade; `file_id` and `user_id` are copied so an index is built from
//   this table alone, one user at a time.

export async function up(db: Kysely<any>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema
    .createTable("file_chunk_vectors")
    .addColumn("chunk_id", "text", (c) => c.primaryKey().references("file_chunks.id").onDelete("cascade"))
    .addColumn("file_id", "text", (c) => c.notNull().references("files.id").onDelete("cascade"))
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("dims", "integer", (c) => c.notNull())
    .addColumn("vector", postgres ? "bytea" : "blob", (c) => c.notNull())
    .execute();
  // Building a user's index, and its staleness check (count and newest chunk id).
  await db.schema.createIndex("file_chunk_vectors_user_model_idx").on("file_chunk_vectors").columns(["user_id", "model", "chunk_id"]).execute();
  // The cascade from files, and a file's vectors.
  await db.schema.createIndex("file_chunk_vectors_file_idx").on("file_chunk_vectors").column("file_id").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("file_chunk_vectors").execute();
}

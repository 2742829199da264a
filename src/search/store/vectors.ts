import { sql, type Kysely } from "kysely";
import { inTransaction } from "../../billing/inTransaction.ts";
import type { Database } from "../../store/schema.ts";
import type { ChunkHit } from "./chunks.ts";

/**
 * Chunks' embedding vectors (migration 0580): the database keeps them, each process indexes them
 * (src/search/vectorIndex.ts). Vectors are stored as little-endian float32 bytes, whatever the
 * machine's byte order, so every gateway reads the same numbers.
 *
 * As in chunks.ts, every read is one user's (`userId` is required); who may ask is the policies'.
 */

/** Rows read per query when building an index: bounds the memory of one read. */
const PAGE = 2_000;
/** Rows per INSERT: well under either database's limit on bound parameters. */
const INSERT_BATCH = 100;

export interface ChunkVector {
  chunkId: string;
  fileId: string;
  vector: Float32Array;
}

/** float32s as little-endian bytes. */
export function encodeVector(vector: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i]!, true);
  return bytes;
}

/** The inverse of encodeVector. */
export function decodeVector(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * Stores the vectors of some of a file's chunks (a chunk already embedded keeps its vector).
 * Returns false, writing nothing, when the file is gone or not `userId`'s: the indexer then stops.
 * A chunk removed meanwhile (the file re-indexed) is skipped rather than failing the batch.
 */
export async function insertVectors(
  db: Kysely<Database>,
  input: { fileId: string; userId: string; model: string; vectors: ReadonlyArray<{ chunkId: string; vector: ArrayLike<number> }> },
): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    // Locks the file's row (PostgreSQL) as insertChunks does: a delete that comes after waits for
    // this batch and removes it with the rest.
    const owned = await trx
      .updateTable("files")
      .set((eb) => ({ chunks_indexed: eb.ref("chunks_indexed") }))
      .where("id", "=", input.fileId)
      .where("user_id", "=", input.userId)
      .executeTakeFirst();
    if (Number(owned.numUpdatedRows) === 0) return false;
    const ids = input.vectors.map((v) => v.chunkId);
    if (ids.length === 0) return true;
    const present = new Set(
      (await trx.selectFrom("file_chunks").select("id").where("file_id", "=", input.fileId).where("id", "in", ids).execute()).map((r) => r.id),
    );
    const rows = input.vectors
      .filter((v) => present.has(v.chunkId))
      .map((v) => ({ chunk_id: v.chunkId, file_id: input.fileId, user_id: input.userId, model: input.model, dims: v.vector.length, vector: encodeVector(v.vector) }));
    for (let i = 0; i < rows.length; i += INSERT_BATCH) {
      await trx
        .insertInto("file_chunk_vectors")
        .values(rows.slice(i, i + INSERT_BATCH))
        .onConflict((oc) => oc.column("chunk_id").doNothing())
        .execute();
    }
    return true;
  });
}

/** A file's chunks that `model` has not embedded yet, in order (what the indexer embeds). */
export async function chunksToEmbed(db: Kysely<Database>, fileId: string, model: string): Promise<Array<{ id: string; heading: string | null; text: string }>> {
  return db
    .selectFrom("file_chunks as c")
    .leftJoin("file_chunk_vectors as v", (join) => join.onRef("v.chunk_id", "=", "c.id").on("v.model", "=", model))
    .select(["c.id", "c.heading", "c.text"])
    .where("c.file_id", "=", fileId)
    .where("v.chunk_id", "is", null)
    .orderBy("c.ordinal")
    .execute();
}

/**
 * A user's vectors by `model`, newest chunks first, in pages (`before`: the last chunk id of the
 * page before), optionally only `fileIds`' and only `dims` long.
 */
export async function listVectors(
  db: Kysely<Database>,
  opts: { userId: string; model: string; fileIds?: readonly string[]; before?: string; limit?: number },
): Promise<ChunkVector[]> {
  let query = db
    .selectFrom("file_chunk_vectors")
    .select(["chunk_id", "file_id", "vector"])
    .where("user_id", "=", opts.userId)
    .where("model", "=", opts.model);
  if (opts.fileIds !== undefined) {
    if (opts.fileIds.length === 0) return [];
    query = query.where("file_id", "in", [...opts.fileIds]);
  }
  if (opts.before !== undefined) query = query.where("chunk_id", "<", opts.before);
  const rows = await query
    .orderBy("chunk_id", "desc")
    .limit(Math.max(1, Math.min(PAGE, opts.limit ?? PAGE)))
    .execute();
  return rows.map((r) => ({ chunkId: r.chunk_id, fileId: r.file_id, vector: decodeVector(r.vector) }));
}

/** Rows listVectors returns at most per call. */
export const VECTOR_PAGE = PAGE;

/**
 * What a user's vectors by `model` look like now, cheaply: their count and newest chunk id (chunk
 * ids are time-ordered). An index built from the same rows has the same stamp; one that differs
 * means another process (or a deletion) changed them.
 */
export async function vectorStamp(db: Kysely<Database>, userId: string, model: string): Promise<{ count: number; newest: string }> {
  const row = await db
    .selectFrom("file_chunk_vectors")
    .select((eb) => [eb.fn.countAll<number | string>().as("n"), eb.fn.max("chunk_id").as("newest")])
    .where("user_id", "=", userId)
    .where("model", "=", model)
    .executeTakeFirstOrThrow();
  return { count: Number(row.n), newest: row.newest ?? "" };
}

/**
 * The chunks of `chunkIds` that are still `userId`'s (and in `fileIds`, when given), as search
 * hits in the order of `chunkIds` with `scores` (vector search knows ids; this reads the text).
 */
export async function chunkHits(
  db: Kysely<Database>,
  opts: { userId: string; chunkIds: readonly string[]; scores: readonly number[]; fileIds?: readonly string[] },
): Promise<ChunkHit[]> {
  if (opts.chunkIds.length === 0 || opts.fileIds?.length === 0) return [];
  let query = db
    .selectFrom("file_chunks as c")
    .innerJoin("files as f", "f.id", "c.file_id")
    .select(["c.id", "c.file_id", "f.filename", "c.ordinal", "c.heading", "c.text", "c.start_offset", "c.end_offset"])
    .where("c.user_id", "=", opts.userId)
    .where("c.id", "in", [...opts.chunkIds]);
  if (opts.fileIds !== undefined) query = query.where("c.file_id", "in", [...opts.fileIds]);
  const rows = new Map((await query.execute()).map((r) => [r.id, r]));
  const hits: ChunkHit[] = [];
  opts.chunkIds.forEach((id, i) => {
    const row = rows.get(id);
    if (!row) return;
    hits.push({
      fileId: row.file_id,
      filename: row.filename,
      chunkId: row.id,
      ordinal: Number(row.ordinal),
      heading: row.heading,
      text: row.text,
      start: Number(row.start_offset),
      end: Number(row.end_offset),
      score: opts.scores[i] ?? 0,
    });
  });
  return hits;
}

/** Vectors stored for a file (tests, and the admin's curiosity). */
export async function countFileVectors(db: Kysely<Database>, fileId: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from file_chunk_vectors where file_id = ${fileId}`.execute(db);
  return Number(rows[0]!.n);
}

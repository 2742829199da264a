import { createHash } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { inTransaction } from "../../billing/inTransaction.ts";
import { newId } from "../../store/ids.ts";
import type { Database, FileStatus, FileTable } from "../../store/schema.ts";

/**
 * Uploaded documents: the row, its bytes, and the progress of indexing them (migration 0560).
 * The bytes live in the database (`file_blobs`) so every gateway on it serves them; the user's
 * file name is only a label and never a path. No function here checks who asks: `getFile` and
 * `readBlob` answer for any id, and src/policies/ decides who may see it (others' files look
 * missing). Indexing writes chunks with src/search/store/chunks.ts, which advances the progress.
 */

export type StoredFile = Selectable<FileTable>;

/** Longest file name kept (characters); longer names are cut, keeping the extension. */
export const MAX_FILENAME_CHARS = 255;
/** Files one listing returns at most. */
export const MAX_LIST_FILES = 1000;

/** A new file id in OpenAI's style (`file-…`), time-ordered like every id here. */
export function newFileId(now: number = Date.now()): string {
  return `file-${newId(now)}`;
}

/**
 * The name as a label: control and bidirectional-override characters removed (they could disguise
 * an extension when shown), whitespace collapsed, at most MAX_FILENAME_CHARS. Path separators are
 * kept as typed — the name is never used as a path — and an empty result becomes "file".
 */
export function cleanFilename(name: string): string {
  const cleaned = name
    .normalize("NFC")
    .replace(/\s+/g, " ")
    .replace(/[\p{Cc}\p{Cf}]/gu, "")
    .trim();
  if (cleaned === "") return "file";
  const chars = Array.from(cleaned);
  if (chars.length <= MAX_FILENAME_CHARS) return cleaned;
  const dot = cleaned.lastIndexOf(".");
  const extension = dot > 0 ? Array.from(cleaned.slice(dot)) : [];
  if (extension.length > 0 && extension.length <= 16) return chars.slice(0, MAX_FILENAME_CHARS - extension.length).join("") + extension.join("");
  return chars.slice(0, MAX_FILENAME_CHARS).join("");
}

export interface CreateFileInput {
  userId: string;
  /** As uploaded; cleaned with cleanFilename. */
  filename: string;
  /** The sniffed type (src/search/documents/extract.ts), not the declared one. */
  mime: string;
  purpose: string;
  content: Uint8Array;
}

/** Stores a new file and its bytes (one transaction), `processing` with no chunks yet. */
export async function createFile(db: Kysely<Database>, input: CreateFileInput, now: number = Date.now()): Promise<StoredFile> {
  const file: StoredFile = {
    id: newFileId(now),
    user_id: input.userId,
    filename: cleanFilename(input.filename),
    mime: input.mime,
    bytes: input.content.byteLength,
    sha256: createHash("sha256").update(input.content).digest("hex"),
    purpose: input.purpose,
    status: "processing",
    error: null,
    chunks_total: null,
    chunks_indexed: 0,
    created_at: now,
  };
  await inTransaction(db, async (trx) => {
    await trx.insertInto("files").values(file).execute();
    await trx.insertInto("file_blobs").values({ file_id: file.id, content: input.content }).execute();
  });
  return file;
}

/** Any user's file by id (policies decide who may see it). */
export async function getFile(db: Kysely<Database>, id: string): Promise<StoredFile | undefined> {
  return db.selectFrom("files").selectAll().where("id", "=", id).executeTakeFirst();
}

/** One user's files, newest first. */
export async function listFiles(db: Kysely<Database>, userId: string, opts: { purpose?: string; limit?: number } = {}): Promise<StoredFile[]> {
  const limit = Math.max(1, Math.min(MAX_LIST_FILES, Math.floor(opts.limit ?? MAX_LIST_FILES)));
  let query = db.selectFrom("files").selectAll().where("user_id", "=", userId);
  if (opts.purpose !== undefined) query = query.where("purpose", "=", opts.purpose);
  return query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

/**
 * Deletes a file with its chunks (so search stops finding them at once) and its bytes. Returns
 * whether there was such a file.
 */
export async function deleteFile(db: Kysely<Database>, id: string): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    // Explicitly rather than by cascade alone: the order is then the same on both databases.
    await trx.deleteFrom("file_chunk_vectors").where("file_id", "=", id).execute();
    await trx.deleteFrom("file_chunks").where("file_id", "=", id).execute();
    await trx.deleteFrom("file_blobs").where("file_id", "=", id).execute();
    const result = await trx.deleteFrom("files").where("id", "=", id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  });
}

/** The bytes of a file; undefined when there is no such file. */
export async function readBlob(db: Kysely<Database>, id: string): Promise<Uint8Array | undefined> {
  const row = await db.selectFrom("file_blobs").select("content").where("file_id", "=", id).executeTakeFirst();
  // Both drivers answer a Buffer; a plain Uint8Array view of it is what callers are promised.
  return row ? new Uint8Array(row.content.buffer, row.content.byteOffset, row.content.byteLength) : undefined;
}

/** Bytes a user stores in all their files, for the storage quota. */
export async function storedBytes(db: Kysely<Database>, userId: string): Promise<number> {
  const row = await db
    .selectFrom("files")
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>("bytes"), eb.lit(0)).as("total"))
    .where("user_id", "=", userId)
    .executeTakeFirstOrThrow();
  return Number(row.total);
}

/** Records how many chunks the text was cut into, before they are written (progress = indexed / total). */
export async function setChunksTotal(db: Kysely<Database>, id: string, total: number): Promise<void> {
  await db.updateTable("files").set({ chunks_total: total }).where("id", "=", id).execute();
}

/**
 * Starts (or restarts, after a crash) the indexing of a file cut into `chunksTotal` chunks: the
 * chunks of an earlier try are removed and the progress starts from 0, in one transaction.
 */
export async function startIndexing(db: Kysely<Database>, id: string, chunksTotal: number): Promise<void> {
  await inTransaction(db, async (trx) => {
    await trx.deleteFrom("file_chunks").where("file_id", "=", id).execute();
    await trx.updateTable("files").set({ chunks_total: chunksTotal, chunks_indexed: 0 }).where("id", "=", id).execute();
  });
}

/** Indexing finished: the file is `processed` (its chunks all written). */
export async function markIndexed(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable("files").set({ status: "processed", error: null }).where("id", "=", id).where("status", "=", "processing").execute();
}

/**
 * Extraction or indexing failed: the file is `error` with `message` (words for the user), and the
 * chunks written so far are removed — search should not answer from half a document that the list
 * shows as failed. The bytes stay, so the user can download or delete it.
 */
export async function markFailed(db: Kysely<Database>, id: string, message: string): Promise<void> {
  await inTransaction(db, async (trx) => {
    await trx.deleteFrom("file_chunks").where("file_id", "=", id).execute();
    await trx.updateTable("files").set({ status: "error", error: message.slice(0, 1000), chunks_indexed: 0 }).where("id", "=", id).execute();
  });
}

export interface IndexingProgress {
  status: FileStatus;
  chunksTotal: number | null;
  chunksIndexed: number;
  /** 0..1; null while the number of chunks is not known yet. */
  fraction: number | null;
}

/** How far indexing of `file` is, for the UI and for a chat that starts before it ends. */
export function indexingProgress(file: StoredFile): IndexingProgress {
  const total = file.chunks_total;
  let fraction: number | null = null;
  if (file.status === "processed") fraction = 1;
  else if (total !== null) fraction = total === 0 ? 1 : Math.min(1, file.chunks_indexed / total);
  return { status: file.status, chunksTotal: total, chunksIndexed: file.chunks_indexed, fraction };
}

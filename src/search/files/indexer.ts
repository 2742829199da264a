import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { isServiceError } from "../../errors.ts";
import type { Dialect } from "../../store/database.ts";
import type { Database } from "../../store/schema.ts";
import { insertChunks } from "../store/chunks.ts";
import { getFile, markFailed, markIndexed, readBlob, setChunksTotal } from "../store/files.ts";
import type { SemanticSearch } from "../semantic.ts";
import type { DocumentsConfig } from "./config.ts";

/** Chunks written per statement: progress moves in steps this big, and no write holds the database long. */
const BATCH = 64;

export interface FileIndexerOptions {
  db: Kysely<Database>;
  dialect: Dialect;
  config: Pick<DocumentsConfig, "indexConcurrency" | "maxFileBytes" | "staleIndexingMs">;
  logger: Pick<Logger, "info" | "warn" | "error">;
  /**
   * Semantic retrieval: a processed file's chunks are then embedded (src/search/semantic.ts).
   * `busy` says whether requests are waiting for the embedding model (its admission queue):
   * indexing then pauses between batches, up to BUSY_WAIT_MS per batch, so an upload does not
   * stand in front of interactive embedding requests.
   */
  semantic?: { search: SemanticSearch; busy?: () => boolean };
}

/** Longest pause before one embedding batch while the model is busy: indexing is slowed, never starved. */
const BUSY_WAIT_MS = 5_000;
const BUSY_POLL_MS = 100;

/**
 * The extractors (unpdf, mammoth, readability…) load on the first file indexed, not at every start
 * of a server that may never see an upload.
 */
async function documentTools() {
  const [{ extractDocument }, { chunkText }] = await Promise.all([import("../documents/extract.ts"), import("../documents/chunk.ts")]);
  return { extractDocument, chunkText };
}

/**
 * Extracts and indexes uploaded files in the background (issue 15): extractDocument (a worker
 * thread with its own time and memory bounds) → chunkText → the lexical index, in batches that
 * advance `chunks_indexed`, then `processed`; any failure marks the file `error` with the
 * extractor's words. At most `indexConcurrency` files at a time in this process, in upload order,
 * so a burst of uploads queues here instead of taking every core from the engine.
 *
 * A process that dies mid-indexing leaves its files `processing`. They are indexed again rather
 * than marked failed: the bytes are safe in the database and indexing is repeatable (a job starts
 * by clearing the file's chunks), so the user gets the document they uploaded, not an error they
 * did not cause. Which leftovers are ours to pick up depends on who else may be indexing:
 * - SQLite is one process's database: at start, every file still `processing` is a leftover.
 * - PostgreSQL may be shared by several gateways, each indexing its own uploads: a file counts as
 *   left over once it has been `processing` for `staleIndexingMs` after its upload, checked at
 *   start and then periodically. (Two gateways picking up the same leftover at once is harmless
 *   but wasteful: the second one's chunk inserts conflict, and the file ends `error`; the user
 *   uploads it again.)
 */
export class FileIndexer {
  private readonly queue: string[] = [];
  /** Queued or running here: never queued twice. */
  private readonly known = new Set<string>();
  private running = 0;
  private closed = false;
  private sweep: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: FileIndexerOptions) {}

  /** Picks up the files a dead process left `processing` (see the class comment), then keeps checking on PostgreSQL. */
  async start(): Promise<void> {
    await this.recover();
    if (this.options.dialect === "postgres") {
      const every = Math.max(60_000, Math.floor(this.options.config.staleIndexingMs / 4));
      this.sweep = setInterval(() => void this.recover().catch((err: unknown) => this.options.logger.warn({ err }, "could not look for files left unindexed")), every);
      this.sweep.unref();
    }
  }

  /** Queues `fileId` for indexing (a no-op when it is already queued or running here). */
  enqueue(fileId: string): void {
    if (this.closed || this.known.has(fileId)) return;
    this.known.add(fileId);
    this.queue.push(fileId);
    this.pump();
  }

  /** Files queued or being indexed in this process. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /** Resolves once nothing is queued or running (tests, and a drain that wants to wait). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking work. Queued files stay `processing` in the database and are picked up at the
   * next start; a running job is left to end on its own (its extraction worker has a timeout), and
   * a failure after close is not recorded as the file's fault.
   */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
    if (this.running === 0) this.settleIdle();
  }

  private async recover(): Promise<void> {
    const { db, dialect, config } = this.options;
    let query = db.selectFrom("files").select("id").where("status", "=", "processing");
    if (dialect === "postgres") query = query.where("created_at", "<", Date.now() - config.staleIndexingMs);
    const rows = await query.orderBy("created_at").orderBy("id").execute();
    if (rows.length > 0) this.options.logger.info({ files: rows.length }, "indexing files that an earlier process left unfinished");
    for (const row of rows) this.enqueue(row.id);
  }

  private pump(): void {
    while (!this.closed && this.running < this.options.config.indexConcurrency && this.queue.length > 0) {
      const fileId = this.queue.shift()!;
      this.running++;
      void this.index(fileId).finally(() => {
        this.running--;
        this.known.delete(fileId);
        this.pump();
        if (this.pending === 0) this.settleIdle();
      });
    }
  }

  private settleIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Embeds a processed file's chunks; a failure is logged and leaves the file lexically searchable. */
  private async embed(fileId: string, userId: string): Promise<void> {
    const semantic = this.options.semantic;
    if (!semantic) return;
    const started = Date.now();
    try {
      const embedded = await semantic.search.embedFile(fileId, userId, {
        shouldStop: () => this.closed,
        beforeBatch: async () => {
          const until = Date.now() + BUSY_WAIT_MS;
          while (semantic.busy?.() && Date.now() < until && !this.closed) await new Promise((resolve) => setTimeout(resolve, BUSY_POLL_MS));
        },
      });
      this.options.logger.info({ fileId, embedded, model: semantic.search.model, ms: Date.now() - started }, "file embedded");
    } catch (error) {
      if (this.closed) return;
      this.options.logger.warn({ err: error, fileId, model: semantic.search.model }, "embedding a file failed; it is searchable by its words only");
    }
  }

  private async index(fileId: string): Promise<void> {
    const { db, logger } = this.options;
    try {
      const file = await getFile(db, fileId);
      // Deleted meanwhile, or finished by someone else: nothing to do.
      if (!file || file.status !== "processing") return;
      const bytes = await readBlob(db, fileId);
      if (!bytes) return;
      const { extractDocument, chunkText } = await documentTools();
      const extracted = await extractDocument(bytes, { filename: file.filename, declaredMime: file.mime, limits: { maxBytes: this.options.config.maxFileBytes } });
      const chunks = chunkText(extracted.text);
      // A job run again after a crash starts from nothing: the chunks of the earlier try go first.
      await db.deleteFrom("file_chunks").where("file_id", "=", fileId).execute();
      await db.updateTable("files").set({ chunks_indexed: 0 }).where("id", "=", fileId).execute();
      await setChunksTotal(db, fileId, chunks.length);
      for (let i = 0; i < chunks.length; i += BATCH) {
        if (this.closed) return;
        // False: deleted while indexing; stop writing chunks for a file that is gone.
        if (!(await insertChunks(db, fileId, file.user_id, chunks.slice(i, i + BATCH)))) return;
      }
      await markIndexed(db, fileId);
      logger.info({ fileId, chunks: chunks.length, kind: extracted.kind, truncated: extracted.truncated }, "file indexed");
      // After `processed`: the file is searchable by its words meanwhile, and stays so if this fails.
      await this.embed(fileId, file.user_id);
    } catch (error) {
      // After close, the database may be closing under us: leave the file for the next start.
      if (this.closed) return;
      const message = isServiceError(error) && error.kind !== "internal" ? error.message : "The file could not be read.";
      if (!isServiceError(error)) logger.error({ err: error, fileId }, "indexing a file failed");
      else logger.warn({ fileId, code: error.code, reason: error.message }, "a file could not be indexed");
      await markFailed(db, fileId, message).catch((err: unknown) => logger.error({ err, fileId }, "could not mark a file as failed"));
    }
  }
}

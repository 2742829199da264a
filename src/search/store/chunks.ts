import { sql, type Kysely } from "kysely";
import { inTransaction } from "../../billing/inTransaction.ts";
import { parseQuery, toFts5, toWebsearch, type ParsedQuery } from "../../store/fullTextQuery.ts";
import { ServiceError } from "../../errors.ts";
import type { Dialect } from "../../store/database.ts";
import { newId } from "../../store/ids.ts";
import type { Database } from "../../store/schema.ts";
import type { Chunk } from "../documents/chunk.ts";

/**
 * The lexical index over documents' chunks (migration 0560): SQLite FTS5 ranked by BM25, and
 * PostgreSQL full-text search ranked by ts_rank_cd — one interface, the same words on both (the
 * `simple` configuration / unicode61: no stemming, case folded, accents kept).
 *
 * A search is a QUESTION, not a query language: any of its words may match (OR), and the ranking
 * puts the chunks with the most of the rarest words first. The words are read as the sidebar's
 * conversation search reads them (src/chat/search.ts `parseQuery`: quoted phrases kept, every term
 * quoted on its way to either engine), so nothing a user types — quotes, `NEAR`, `*`, `:`, `&`,
 * `|`, parentheses, `OR` — ever reaches FTS5 or tsquery as syntax. A leading `-` is read as part
 * of the text, not as an exclusion.
 *
 * Every search is one user's (`userId` is required, and only that user's chunks can match); which
 * user may ask is the policies' business (src/policies/).
 */

export interface ChunkHit {
  fileId: string;
  filename: string;
  chunkId: string;
  ordinal: number;
  heading: string | null;
  text: string;
  /** [start, end): offsets into the file's extracted text. */
  start: number;
  end: number;
  /**
   * Higher is better. Comparable only within one search on one database (BM25 on SQLite,
   * ts_rank_cd on PostgreSQL, on different scales): fuse rankings by rank, not by score.
   */
  score: number;
}

export interface SearchChunksOptions {
  userId: string;
  query: string;
  /** Only these files (none: nothing found); absent: all the user's files. */
  fileIds?: readonly string[];
  limit: number;
}

/** Most hits one search returns. */
export const MAX_CHUNK_HITS = 100;
/** Most files one search may be narrowed to (each is a bound parameter). */
export const MAX_SEARCH_FILE_IDS = 1000;
/** Rows per INSERT: well under either database's limit on bound parameters. */
const INSERT_BATCH = 100;

/**
 * Writes a batch of `chunks` of a file and advances its progress (`chunks_indexed`), in one
 * transaction, so background indexing can write a large file in several calls and a search in
 * between sees whole batches. Returns false, writing nothing, when the file is gone (deleted while
 * it was being indexed) or is not `userId`'s: the indexer should then stop.
 */
export async function insertChunks(db: Kysely<Database>, fileId: string, userId: string, chunks: readonly Chunk[]): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    // First, so the file's row is locked (PostgreSQL) before the chunks go in: a delete that comes
    // after waits for this batch and then removes it with the rest.
    const updated = await trx
      .updateTable("files")
      .set((eb) => ({ chunks_indexed: eb("chunks_indexed", "+", chunks.length) }))
      .where("id", "=", fileId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return false;
    const now = Date.now();
    for (let i = 0; i < chunks.length; i += INSERT_BATCH) {
      const rows = chunks.slice(i, i + INSERT_BATCH).map((chunk) => ({
        id: newId(now),
        file_id: fileId,
        user_id: userId,
        ordinal: chunk.ordinal,
        heading: chunk.heading,
        text: chunk.text,
        start_offset: chunk.start,
        end_offset: chunk.end,
      }));
      await trx.insertInto("file_chunks").values(rows).execute();
    }
    return true;
  });
}

/** One user's chunks best matching `query`, best first (see the top of this file). */
export async function searchChunks(db: Kysely<Database>, dialect: Dialect, opts: SearchChunksOptions): Promise<ChunkHit[]> {
  const limit = Math.max(1, Math.min(MAX_CHUNK_HITS, Math.floor(opts.limit)));
  const fileIds = opts.fileIds === undefined ? undefined : [...new Set(opts.fileIds)];
  if (fileIds !== undefined && fileIds.length > MAX_SEARCH_FILE_IDS) {
    throw new ServiceError("invalid_request", `at most ${MAX_SEARCH_FILE_IDS} files can be searched at once`, { code: "too_many_files", param: "file_ids" });
  }
  if (fileIds?.length === 0) return [];
  const parsed = lexicalQuery(opts.query);
  if (parsed === null) return [];
  const inFiles = fileIds === undefined ? sql`` : sql`and c.file_id in (${sql.join(fileIds)})`;

  type Row = { chunk_id: string; file_id: string; filename: string; ordinal: number; heading: string | null; text: string; start_offset: number; end_offset: number; score: number };
  let rows: Row[];
  if (dialect === "sqlite") {
    // bm25() is lower-is-better (negative); its negation is the score. The FTS table drives the
    // join, so only matching chunks are read.
    const result = await sql<Row>`
      select c.id as chunk_id, c.file_id, f.filename, c.ordinal, c.heading, c.text, c.start_offset, c.end_offset,
        -bm25(file_chunks_fts) as score
      from file_chunks_fts
        join file_chunks c on c.rowid = file_chunks_fts.rowid
        join files f on f.id = c.file_id
      where file_chunks_fts match ${toFts5(parsed)} and c.user_id = ${opts.userId} ${inFiles}
      order by score desc, c.file_id, c.ordinal
      limit ${limit}`.execute(db);
    rows = result.rows;
  } else {
    // Normalization 1 divides by 1 + log(length), so a long chunk does not win by length alone
    // (BM25 normalizes length too).
    const result = await sql<Row>`
      select c.id as chunk_id, c.file_id, f.filename, c.ordinal, c.heading, c.text, c.start_offset, c.end_offset,
        ts_rank_cd(c.search_vector, q.query, 1) as score
      from websearch_to_tsquery('simple'::regconfig, ${toWebsearch(parsed)}) as q(query),
        file_chunks c join files f on f.id = c.file_id
      where c.search_vector @@ q.query and c.user_id = ${opts.userId} ${inFiles}
      order by score desc, c.file_id, c.ordinal
      limit ${limit}`.execute(db);
    rows = result.rows;
  }
  return rows.map((row) => ({
    fileId: row.file_id,
    filename: row.filename,
    chunkId: row.chunk_id,
    ordinal: Number(row.ordinal),
    heading: row.heading,
    text: row.text,
    start: Number(row.start_offset),
    end: Number(row.end_offset),
    score: Number(row.score),
  }));
}

/** Chunks of one file in order (for showing a cited passage in context, and for tests). */
export async function listChunks(db: Kysely<Database>, fileId: string, opts: { fromOrdinal?: number; limit?: number } = {}): Promise<Chunk[]> {
  const rows = await db
    .selectFrom("file_chunks")
    .select(["ordinal", "heading", "text", "start_offset", "end_offset"])
    .where("file_id", "=", fileId)
    .where("ordinal", ">=", opts.fromOrdinal ?? 0)
    .orderBy("ordinal")
    .limit(Math.max(1, Math.min(1000, opts.limit ?? 1000)))
    .execute();
  return rows.map((r) => ({ ordinal: r.ordinal, heading: r.heading, text: r.text, start: r.start_offset, end: r.end_offset }));
}

/**
 * The terms of a question as one OR-query (null when it has no words): the conversation search's
 * parser reads the words and phrases; common English words are dropped first when others remain
 * (they match nearly every chunk, so they would cost a ranking of the whole index and add almost
 * nothing to it), which also lets more of a long question fit the parser's bound.
 */
export function lexicalQuery(question: string): ParsedQuery | null {
  const tokens = question.split(/\s+/).filter((t) => t !== "");
  const meaningful = tokens.filter((t) => t.includes('"') || !STOP_WORDS.has(t.toLowerCase().replace(/[^\p{L}\p{N}']/gu, "")));
  let parsed = parseQuery(meaningful.join(" "));
  if (parsed.clauses.length === 0 && parsed.excluded.length === 0) parsed = parseQuery(question);
  const seen = new Set<string>();
  const terms: string[][] = [];
  for (const term of [...parsed.clauses.flat(), ...parsed.excluded]) {
    const key = term.join(" ");
    if (seen.has(key)) continue;
    seen.add(key);
    terms.push(term);
  }
  return terms.length === 0 ? null : { clauses: [terms], excluded: [] };
}

const STOP_WORDS = new Set(
  `a about above after again against all am an and any are as at be because been before being below between both but by
  can could did do does doing down during each few for from further had has have having he her here hers herself him himself
  his how i if in into is it it's its itself just me more most my myself no nor not now of off on once only or other our ours
  ourselves out over own same she should so some such than that that's the their theirs them themselves then there these they
  this those through to too under until up very was we were what what's when where which while who whom why will with would
  you your yours yourself yourselves tell please explain describe`.split(/\s+/),
);

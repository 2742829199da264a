import type { Kysely } from "kysely";
import type { ModelRouter } from "../engines/router.ts";
import { isServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { ChunkHit } from "./store/chunks.ts";
import { chunkHits, chunksToEmbed, insertVectors } from "./store/vectors.ts";
import { VectorIndex } from "./vectorIndex.ts";

/**
 * Semantic retrieval (issue 15, optional: `search.embeddingModel`): documents' chunks embedded by a
 * served embedding model as they are indexed, the question embedded when asked, and the nearest
 * chunks found in the user's vector index (vectorIndex.ts). retrieve.ts fuses them with the lexical
 * hits by reciprocal rank fusion (rank.ts).
 *
 * Embeddings go through the model router (`routerEmbedder`), i.e. the local engine's embedding
 * context or an upstream /v1/embeddings, not through the serving pipeline: indexing is background
 * work with no client to answer, no rate limit to apply and no ledger row to write (the upload
 * and each search that reads it are what is metered), and the question is embedded inside a
 * request the pipeline has already admitted. What keeps background embedding from crowding out
 * requests is its own bound: one file at a time per process (the indexer's `indexConcurrency`),
 * small batches (`batch` texts per call), one call at a time, and — where the indexer is given a
 * way to see it — a pause while the embedding model's admission queue has requests waiting.
 */

/** Embeds texts in order (one vector each). */
export type EmbedTexts = (texts: string[], signal?: AbortSignal) => Promise<number[][]>;

/** The router's embeddings of `model` (local engine or upstream /v1/embeddings). */
export function routerEmbedder(router: Pick<ModelRouter, "embed">, model: string): EmbedTexts {
  return async (texts, signal) => (await router.embed({ model, input: texts, ...(signal ? { signal } : {}) })).data;
}

/** Longest text embedded per chunk (characters): most embedding models read 512 tokens at most. */
export const MAX_EMBED_CHARS = 1_500;
/** Texts per embedding call while indexing: small, so others' requests interleave. */
const DEFAULT_BATCH = 16;
/** Times a text the model refuses (longer than its context) is halved before it is left unembedded. */
const MAX_HALVINGS = 4;

export interface SemanticSearchOptions {
  db: Kysely<Database>;
  /** The served model id that embeds (`search.embeddingModel`). */
  model: string;
  embed: EmbedTexts;
  /** Shared with other users of the same model; built here when absent. */
  index?: VectorIndex;
  batch?: number;
}

/** What a chunk is embedded as: its heading and text, bounded. */
export function embeddingText(chunk: { heading: string | null; text: string }): string {
  const text = chunk.heading ? `${chunk.heading}\n${chunk.text}` : chunk.text;
  return text.slice(0, MAX_EMBED_CHARS);
}

export class SemanticSearch {
  readonly index: VectorIndex;
  private readonly batch: number;

  constructor(private readonly options: SemanticSearchOptions) {
    this.index = options.index ?? new VectorIndex({ db: options.db, model: options.model });
    this.batch = Math.max(1, options.batch ?? DEFAULT_BATCH);
  }

  get model(): string {
    return this.options.model;
  }

  /**
   * Embeds the file's chunks that have no vector yet, `batch` at a time, and stores them. Stops
   * (returning what it stored) when the file is gone or `shouldStop` says so; `beforeBatch` may
   * wait (e.g. while interactive requests queue for the model). Embedding errors propagate: the
   * caller logs them, and the file stays searchable by its words.
   */
  async embedFile(fileId: string, userId: string, opts: { shouldStop?: () => boolean; beforeBatch?: () => Promise<void> } = {}): Promise<number> {
    const pending = await chunksToEmbed(this.options.db, fileId, this.options.model);
    let stored = 0;
    for (let i = 0; i < pending.length; i += this.batch) {
      if (opts.shouldStop?.()) break;
      await opts.beforeBatch?.();
      const slice = pending.slice(i, i + this.batch);
      const vectors = await this.embedBatch(slice.map(embeddingText));
      const rows = slice.flatMap((c, j) => (vectors[j] ? [{ chunkId: c.id, vector: vectors[j] }] : []));
      if (!(await insertVectors(this.options.db, { fileId, userId, model: this.options.model, vectors: rows }))) break;
      this.index.added(
        userId,
        rows.map((r) => ({ chunkId: r.chunkId, fileId, vector: Float32Array.from(r.vector) })),
      );
      stored += rows.length;
    }
    return stored;
  }

  /**
   * Vectors of `texts`, in order. A batch the model refuses as a request error (an input longer
   * than its context: tokens are the model's business, characters only approximate them) is
   * embedded text by text, each refused one halved until it fits; one that never fits gets no
   * vector (null) and is found by its words only. Other failures (the model is gone) propagate.
   */
  private async embedBatch(texts: string[]): Promise<Array<number[] | null>> {
    const refused = (error: unknown) => isServiceError(error) && error.kind === "invalid_request";
    const checked = (vectors: number[][], n: number) => {
      if (vectors.length !== n) throw new Error(`the embedding model answered ${vectors.length} vectors for ${n} texts`);
      return vectors;
    };
    try {
      return checked(await this.options.embed(texts), texts.length);
    } catch (error) {
      if (!refused(error) || texts.length === 0) throw error;
    }
    const out: Array<number[] | null> = [];
    for (const text of texts) {
      let piece = text;
      let vector: number[] | null = null;
      for (let halvings = 0; vector === null && halvings <= MAX_HALVINGS && piece !== ""; halvings++) {
        try {
          vector = checked(await this.options.embed([piece]), 1)[0]!;
        } catch (error) {
          if (!refused(error)) throw error;
          piece = piece.slice(0, Math.floor(piece.length / 2));
        }
      }
      out.push(vector);
    }
    return out;
  }

  /** The user's chunks nearest to `query` (in `fileIds` when given), nearest first. One embedding call. */
  async search(opts: { userId: string; query: string; fileIds?: readonly string[]; limit: number; signal?: AbortSignal }): Promise<ChunkHit[]> {
    if (opts.fileIds?.length === 0 || opts.query.trim() === "") return [];
    const [vector] = await this.options.embed([opts.query.slice(0, MAX_EMBED_CHARS)], opts.signal);
    if (!vector) return [];
    const matches = await this.index.search(opts.userId, vector, { k: opts.limit, ...(opts.fileIds ? { fileIds: opts.fileIds } : {}) });
    return chunkHits(this.options.db, {
      userId: opts.userId,
      chunkIds: matches.map((m) => m.chunkId),
      scores: matches.map((m) => m.score),
      ...(opts.fileIds ? { fileIds: opts.fileIds } : {}),
    });
  }
}

/**
 * Semantic search with `model` through `router`, checked first: a model that is not served or
 * does not embed throws (404 / 400 naming `model`), so a wrong `search.embeddingModel` stops the
 * start with a clear message instead of failing every upload quietly.
 */
export function createSemanticSearch(deps: { db: Kysely<Database>; router: Pick<ModelRouter, "embed" | "inspectEmbedding"> }, model: string): SemanticSearch {
  deps.router.inspectEmbedding({ model, input: ["check"] });
  return new SemanticSearch({ db: deps.db, model, embed: routerEmbedder(deps.router, model) });
}

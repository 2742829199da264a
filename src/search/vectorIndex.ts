import { setImmediate as yieldToLoop } from "node:timers/promises";
import hnswlib from "hnswlib-node";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { listVectors, vectorStamp, VECTOR_PAGE, type ChunkVector } from "./store/vectors.ts";

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/**
 * Nearest-neighbour search over a user's chunk vectors: one in-memory HNSW graph (hnswlib, native)
 * per user and embedding model, in this process.
 *
 * The database (file_chunk_vectors) is the truth; an index is a cache of it, built on a user's
 * first semantic search and kept in a bounded LRU, so several gateways on one database agree. Each
 * search first reads the user's stamp — count and newest chunk id, one indexed aggregate — and
 * rebuilds an index that no longer matches it (another gateway added vectors, or a file was
 * deleted). Vectors this process writes are added to its cached index directly (`added`), with the
 * stamp advanced to match, so its own indexing does not cost a rebuild.
 *
 * Bounds (hnswlib is synchronous native code on the event loop):
 * - An index holds at most `maxVectorsPerIndex` vectors, the newest chunks' (default 20,000): a
 *   user with more still has lexical search over everything, and vector search over the newest.
 *   Building costs O(n log n): 10,000 × 64-dimension vectors took 1.6 s, and 6.8 s with the
 *   machine's load average at 13, on a shared 2-core machine (`npm run bench:search` prints it).
 *   It is done in slices of about `sliceMs`, yielding to the event loop between them, so requests
 *   keep being served while an index is built: the loop's delay meanwhile was p99 34–105 ms, max
 *   95–280 ms in those runs (one addPoint can take tens of ms on a loaded machine, and the process
 *   is descheduled too) — noticeable, not a stall. A search waits for its own user's build only,
 *   and concurrent searches share one build. Building in a worker thread (hnswlib can write the
 *   index to a file that readIndex loads asynchronously) would take even that off the loop.
 * - All cached indexes together hold at most `maxCachedVectors` (default 200,000); the least
 *   recently searched are dropped first. Memory is about dims × 4 + 2 × M × 4 bytes per vector
 *   (~0.4 KiB at 64 dimensions, ~3 KiB at 768).
 * - One search is a few hundred microseconds (a filter by file narrows the graph walk in native
 *   code, calling back into JS per candidate).
 */
export interface VectorIndexOptions {
  db: Kysely<Database>;
  /** The embedding model whose vectors are indexed (`search.embeddingModel`). */
  model: string;
  maxVectorsPerIndex?: number;
  maxCachedVectors?: number;
  /** Longest stretch of graph building between yields to the event loop (ms). */
  sliceMs?: number;
}

export interface VectorMatch {
  chunkId: string;
  /** Cosine similarity, -1..1 (higher is nearer). */
  score: number;
}

/** HNSW's graph degree and build-time beam: hnswlib's usual values, a good recall at this size. */
const M = 16;
const EF_CONSTRUCTION = 100;
/** A fixed seed: the same rows build the same graph, so gateways answer alike. */
const SEED = 15;

interface UserIndex {
  hnsw: Hnsw;
  dims: number;
  /** label → chunk id / file id. */
  chunkIds: string[];
  fileIds: string[];
  has: Set<string>;
  count: number;
  newest: string;
  /** Vectors beyond maxVectorsPerIndex were left out. */
  capped: boolean;
}

export class VectorIndex {
  private readonly indexes = new Map<string, UserIndex>();
  private readonly building = new Map<string, Promise<UserIndex | null>>();
  private cached = 0;
  private readonly maxPerIndex: number;
  private readonly maxCached: number;
  private readonly sliceMs: number;
  /** Builds since start and the last one's duration (bench, /metrics later). */
  readonly stats = { builds: 0, lastBuildMs: 0, lastBuildVectors: 0 };

  constructor(private readonly options: VectorIndexOptions) {
    this.maxPerIndex = Math.max(1, options.maxVectorsPerIndex ?? 20_000);
    this.maxCached = Math.max(this.maxPerIndex, options.maxCachedVectors ?? 200_000);
    this.sliceMs = Math.max(1, options.sliceMs ?? 10);
  }

  get model(): string {
    return this.options.model;
  }

  /** Vectors held by all cached indexes. */
  get cachedVectors(): number {
    return this.cached;
  }

  /**
   * The `k` chunks of `userId` nearest to `vector`, nearest first, only in `fileIds` when given.
   * Results are chunk ids: the caller reads them back from the database, which also drops any a
   * concurrent delete removed.
   */
  async search(userId: string, vector: ArrayLike<number>, opts: { k: number; fileIds?: readonly string[] }): Promise<VectorMatch[]> {
    if (opts.fileIds?.length === 0) return [];
    const index = await this.current(userId);
    if (!index || index.count === 0 || vector.length !== index.dims) return [];
    const k = Math.max(1, Math.min(Math.floor(opts.k), index.chunkIds.length));
    const allowed = opts.fileIds === undefined ? undefined : new Set(opts.fileIds);
    index.hnsw.setEf(Math.max(64, k * 2));
    const found = allowed === undefined ? index.hnsw.searchKnn(Array.from(vector), k) : index.hnsw.searchKnn(Array.from(vector), k, (label) => allowed.has(index.fileIds[label]!));
    return found.neighbors.map((label, i) => ({ chunkId: index.chunkIds[label]!, score: 1 - found.distances[i]! }));
  }

  /**
   * Vectors this process has just stored for `userId` (insertVectors): added to the user's cached
   * index, if there is one, and its stamp advanced, so the next search does not rebuild it.
   */
  added(userId: string, vectors: readonly ChunkVector[]): void {
    const index = this.indexes.get(userId);
    if (!index || vectors.length === 0) return;
    const fresh = vectors.filter((v) => !index.has.has(v.chunkId));
    if (index.capped || index.chunkIds.length + fresh.length > this.maxPerIndex || fresh.some((v) => v.vector.length !== index.dims)) {
      // Past the cap (the newest must replace the oldest) or a new shape: rebuilt on next use.
      this.drop(userId);
      return;
    }
    const needed = index.chunkIds.length + fresh.length;
    if (needed > index.hnsw.getMaxElements()) index.hnsw.resizeIndex(Math.min(this.maxPerIndex, Math.max(needed, index.hnsw.getMaxElements() * 2)));
    for (const v of fresh) this.addPoint(index, v);
    index.count += fresh.length;
    for (const v of fresh) if (v.chunkId > index.newest) index.newest = v.chunkId;
    this.cached += fresh.length;
    this.evict(userId);
  }

  /** Forgets a user's index (e.g. after deleting their files here); the next search rebuilds it. */
  drop(userId: string): void {
    const index = this.indexes.get(userId);
    if (!index) return;
    this.indexes.delete(userId);
    this.cached -= index.chunkIds.length;
  }

  /** The user's index, matching the database now (built or rebuilt when it does not). */
  private async current(userId: string): Promise<UserIndex | null> {
    const pending = this.building.get(userId);
    if (pending) return pending;
    const stamp = await vectorStamp(this.options.db, userId, this.options.model);
    const cached = this.indexes.get(userId);
    if (cached && cached.count === stamp.count && cached.newest === stamp.newest) {
      // Most recently used last: Map keeps insertion order, so eviction takes from the front.
      this.indexes.delete(userId);
      this.indexes.set(userId, cached);
      return cached;
    }
    const again = this.building.get(userId);
    if (again) return again;
    const build = this.build(userId, stamp).finally(() => this.building.delete(userId));
    this.building.set(userId, build);
    return build;
  }

  private async build(userId: string, stamp: { count: number; newest: string }): Promise<UserIndex | null> {
    const started = performance.now();
    this.drop(userId);
    const rows: ChunkVector[] = [];
    let before: string | undefined;
    while (rows.length < this.maxPerIndex) {
      const page = await listVectors(this.options.db, { userId, model: this.options.model, limit: Math.min(VECTOR_PAGE, this.maxPerIndex - rows.length), ...(before !== undefined ? { before } : {}) });
      rows.push(...page);
      if (page.length < VECTOR_PAGE) break;
      before = page[page.length - 1]!.chunkId;
    }
    if (rows.length === 0) return null;
    // One shape per index: the newest chunks' (vectors of another length come from an earlier model of the same name).
    const dims = rows[0]!.vector.length;
    const usable = rows.filter((r) => r.vector.length === dims);
    const hnsw = new HierarchicalNSW("cosine", dims);
    hnsw.initIndex(Math.max(16, usable.length), M, EF_CONSTRUCTION, SEED);
    const index: UserIndex = { hnsw, dims, chunkIds: [], fileIds: [], has: new Set(), count: stamp.count, newest: stamp.newest, capped: stamp.count > usable.length };
    let slice = performance.now();
    for (const row of usable) {
      this.addPoint(index, row);
      if (performance.now() - slice >= this.sliceMs) {
        await yieldToLoop();
        slice = performance.now();
      }
    }
    this.indexes.set(userId, index);
    this.cached += index.chunkIds.length;
    this.evict(userId);
    this.stats.builds++;
    this.stats.lastBuildMs = performance.now() - started;
    this.stats.lastBuildVectors = index.chunkIds.length;
    return index;
  }

  private addPoint(index: UserIndex, row: ChunkVector): void {
    const label = index.chunkIds.length;
    index.hnsw.addPoint(Array.from(row.vector), label);
    index.chunkIds.push(row.chunkId);
    index.fileIds.push(row.fileId);
    index.has.add(row.chunkId);
  }

  /** Drops the least recently used indexes until the cache fits, never `keep`. */
  private evict(keep: string): void {
    for (const [userId] of this.indexes) {
      if (this.cached <= this.maxCached) return;
      if (userId !== keep) this.drop(userId);
    }
  }
}

/**
 * `npm run bench:search`: the document index of issue 15 — how fast chunks are indexed and how
 * long a lexical search takes — on SQLite (FTS5, BM25) and on PostgreSQL (tsvector + GIN,
 * ts_rank_cd), through the real repository (src/search/store/) on real databases.
 *
 *   npm run bench:search -- [--chunks 10000] [--queries 200] [--batch 100] [--seed 15]
 *
 * One user's library: `--chunks` chunks of about 800 characters (text generated deterministically
 * from `--seed`: Zipf-distributed words, headings every few chunks, like extracted documents) in
 * files of 200 chunks, written the way background indexing writes them (createFile, then
 * insertChunks in batches of `--batch`). Then `--queries` searches (after 20 unmeasured warm-up
 * ones): keyword queries and question-shaped ones over the whole library, and the same narrowed to
 * 5 files. A second user's 1,000 chunks share the index, so the user filter has work to do.
 *
 * PostgreSQL is the test database (SPUTNIK_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test),
 * in a fresh schema dropped afterwards; when it is down its part is skipped, loudly.
 *
 * Figures are printed, never asserted: the machine may be shared. The machine's facts and the
 * load average (before and after) are printed with them.
 *
 * Hybrid retrieval (`moreFigures`): the generated "embed" model (src/gguf/embedModel.ts, hidden 64,
 * run by llama.cpp on the CPU) embeds `--embed-sample` chunks through SemanticSearch.embedFile —
 * the indexer's path — for the embedding throughput; its tokenizer knows few words, so made-up
 * words cost a token per byte or two (the tokens/s figure is the comparable one). The library's
 * other chunks get seeded random unit vectors of the same length, written with the same
 * repository: embedding 10,000 such chunks would take most of an hour here, and HNSW's cost does
 * not depend on what the vectors mean. Then: the HNSW build of the user's index (with the
 * event loop's worst delay meanwhile), and per query the question's embedding (real, one call),
 * the vector search, the lexical search and their fusion, p50/p99.
 *
 * The TTFT added by a search-enabled request (`processFigures`, bench/searchTtft.ts): the `bench`
 * model served in-process, plain requests against `web_search_options` ones (first with cold pages,
 * then cached) through searx (or a SearXNG-shaped route when searx is missing), `--ttft-runs` each.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { sql } from "kysely";
import pg from "pg";
import type { Chunk } from "../src/search/documents/chunk.ts";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { LocalEngine } from "../src/engines/local/localEngine.ts";
import { LocalModel } from "../src/engines/local/localModel.ts";
import { ModelRouter } from "../src/engines/router.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { reciprocalRankFusion } from "../src/search/rank.ts";
import { embeddingText, routerEmbedder, SemanticSearch, type EmbedTexts } from "../src/search/semantic.ts";
import { insertChunks, searchChunks } from "../src/search/store/chunks.ts";
import { chunksToEmbed, insertVectors } from "../src/search/store/vectors.ts";
import { VectorIndex } from "../src/search/vectorIndex.ts";
import { createFile, markIndexed, setChunksTotal } from "../src/search/store/files.ts";
import { openDatabase, type Store } from "../src/store/database.ts";
import { postgresReachable, testPostgresUrl } from "../test/support/services.ts";
import { searchTtftFigures } from "./searchTtft.ts";
import { mulberry32 } from "../src/gguf/random.ts";

const { values: args } = parseArgs({
  options: {
    chunks: { type: "string", default: "10000" },
    queries: { type: "string", default: "200" },
    batch: { type: "string", default: "100" },
    seed: { type: "string", default: "15" },
    "ttft-runs": { type: "string", default: "3" },
    "embed-sample": { type: "string", default: "48" },
  },
});
const EMBED_SAMPLE = Number(args["embed-sample"]);
const CHUNKS = Number(args.chunks);
const QUERIES = Number(args.queries);
const BATCH = Number(args.batch);
const SEED = Number(args.seed);
for (const [name, value] of Object.entries({ chunks: CHUNKS, queries: QUERIES, batch: BATCH, seed: SEED })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
}
const CHUNKS_PER_FILE = 200;
const OTHER_USER_CHUNKS = 1_000;
const WARM_UP = 20;
/** Distinct content words in the generated text. */
const VOCABULARY = 20_000;
const USER = "bench-user";
const OTHER_USER = "bench-other-user";

// ---- Deterministic text ---------------------------------------------------------------------


const FUNCTION_WORDS = "the of and to in a is that for it as with was on be by this are or from at an which have not has but were can its".split(" ");
const SYLLABLES = "ka ri to na mu se lo vi pe ra do ne ti sa mo lu be fi ga re zo ha ki no te yu ma li so ve".split(" ");

/** A vocabulary of made-up words (unique, 1–4 syllables) and a Zipf sampler over it. */
function vocabulary(random: () => number, size: number): { words: string[]; pick: () => string } {
  const words = new Set<string>();
  while (words.size < size) {
    const n = 1 + Math.floor(random() * 4);
    let w = "";
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(random() * SYLLABLES.length)];
    if (w.length >= 3) words.add(w);
  }
  const list = [...words];
  // Zipf's law (exponent ~1.07, as in natural text): the word of rank r has weight 1/r^1.07.
  const cumulative: number[] = [];
  let total = 0;
  for (let r = 1; r <= list.length; r++) cumulative.push((total += 1 / r ** 1.07));
  const pick = () => {
    const x = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return list[lo]!;
  };
  return { words: list, pick };
}

/** About `target` characters of sentences: content words from the vocabulary, function words between. */
function paragraph(random: () => number, pick: () => string, target: number): string {
  const sentences: string[] = [];
  let length = 0;
  while (length < target) {
    const n = 8 + Math.floor(random() * 13);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(random() < 0.4 ? FUNCTION_WORDS[Math.floor(random() * FUNCTION_WORDS.length)]! : pick());
    const sentence = words.join(" ");
    sentences.push(sentence[0]!.toUpperCase() + sentence.slice(1) + (random() < 0.1 ? "?" : "."));
    length += sentence.length + 2;
  }
  return sentences.join(" ");
}

/** One file's chunks, with offsets as if its extracted text were the chunks joined by blank lines. */
function fileChunks(random: () => number, pick: () => string, count: number): Chunk[] {
  const chunks: Chunk[] = [];
  let offset = 0;
  let heading: string | null = null;
  for (let ordinal = 0; ordinal < count; ordinal++) {
    if (ordinal % 5 === 0) heading = `${pick()} ${pick()}`.replace(/^./, (c) => c.toUpperCase());
    const text = paragraph(random, pick, 780);
    chunks.push({ ordinal, heading, text, start: offset, end: offset + text.length });
    offset += text.length + 2;
  }
  return chunks;
}

interface BenchQuery {
  kind: "keywords" | "question";
  text: string;
}

/** Keyword queries (2–3 mid-frequency words) and question-shaped ones, alternating. */
function benchQueries(random: () => number, words: string[], count: number): BenchQuery[] {
  // Ranks 50–2000: words a user would search for (not the commonest, not hapaxes).
  const term = () => words[50 + Math.floor(random() * Math.min(1950, words.length - 50))]!;
  const templates = [
    (a: string, b: string, c: string) => `What does the document say about ${a} and ${b}?`,
    (a: string, b: string, c: string) => `How is ${a} related to ${b} in the ${c} section?`,
    (a: string, b: string, c: string) => `Explain why the ${a} ${b} matters for ${c}.`,
  ];
  const out: BenchQuery[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) out.push({ kind: "keywords", text: Array.from({ length: 2 + Math.floor(random() * 2) }, term).join(" ") });
    else out.push({ kind: "question", text: templates[i % templates.length]!(term(), term(), term()) });
  }
  return out;
}

// ---- Measuring ------------------------------------------------------------------------------

/** A library indexed in one database, for the figures measured on it (and for the hooks below). */
interface IndexedLibrary {
  store: Store;
  /** "sqlite" or "postgres". */
  label: string;
  userId: string;
  fileIds: string[];
  queries: BenchQuery[];
}

/** One printed line of figures. */
interface Figure {
  what: string;
  value: string;
}

/** The embedding model, loaded once for both databases. */
let embedding: Promise<{ embed: EmbedTexts; dims: number; model: LocalModel }> | null = null;
function embeddingModel() {
  embedding ??= (async () => {
    const model = await LocalModel.load({ id: "embed", path: await ensureModel("embed"), threads: Math.max(1, os.cpus().length), parallel: 1, contextSize: 2048, settings: { embeddings: true } });
    const embed = routerEmbedder(new ModelRouter([new LocalEngine([model])]), "embed");
    return { embed, dims: (await embed(["dimensions"]))[0]!.length, model };
  })();
  return embedding;
}

/**
 * Hybrid retrieval (see the top of this file): embedding throughput at indexing, the HNSW build,
 * and hybrid query latency. Runs once per database, after the lexical figures, on the same library.
 */
async function moreFigures(library: IndexedLibrary): Promise<Figure[]> {
  const { store, userId, fileIds, queries } = library;
  const { embed, dims } = await embeddingModel();
  const figures: Figure[] = [];

  // 1. Embedding at indexing: as SemanticSearch.embedFile does it (its texts, batches of 16, the
  // same repository), on a sample of the first file's chunks (embedFile would embed all 200).
  const sampleFile = fileIds[0]!;
  const sampleChunks = (await chunksToEmbed(store.db, sampleFile, "embed")).slice(0, EMBED_SAMPLE);
  const sampleChars = sampleChunks.reduce((a, c) => a + embeddingText(c).length, 0);
  let start = performance.now();
  const vectors: number[][] = [];
  for (let i = 0; i < sampleChunks.length; i += 16) vectors.push(...(await embed(sampleChunks.slice(i, i + 16).map(embeddingText))));
  await insertVectors(store.db, { fileId: sampleFile, userId, model: "embed", vectors: sampleChunks.map((c, i) => ({ chunkId: c.id, vector: vectors[i]! })) });
  const embedMs = performance.now() - start;
  figures.push({
    what: `embedding at indexing (generated "embed" model, ${dims} dims, llama.cpp on ${os.cpus().length} CPU threads; ${sampleChunks.length} chunks of ${(sampleChars / Math.max(1, sampleChunks.length)).toFixed(0)} chars, batches of 16)`,
    value: `${((sampleChunks.length / embedMs) * 1000).toFixed(1)} chunks/s (${(embedMs / Math.max(1, sampleChunks.length)).toFixed(0)} ms per chunk; the toy tokenizer spends a token per byte or two of made-up words)`,
  });

  // 2. The rest of the library: seeded random unit vectors, written as the indexer writes vectors.
  const random = mulberry32(SEED + 4);
  start = performance.now();
  let filled = 0;
  for (const fileId of fileIds) {
    const pending = await chunksToEmbed(store.db, fileId, "embed");
    const rows = pending.map((c) => {
      const v = Array.from({ length: dims }, () => random() * 2 - 1);
      const norm = Math.hypot(...v);
      return { chunkId: c.id, vector: v.map((x) => x / norm) };
    });
    for (let i = 0; i < rows.length; i += 100) await insertVectors(store.db, { fileId, userId, model: "embed", vectors: rows.slice(i, i + 100) });
    filled += rows.length;
  }
  const fillMs = performance.now() - start;
  figures.push({ what: `storing vectors (${filled} × ${dims} float32, batches of 100)`, value: `${((filled / fillMs) * 1000).toFixed(0)} vectors/s` });

  // 3. The HNSW build (first search of the user), with the event loop's worst delay meanwhile.
  const index = new VectorIndex({ db: store.db, model: "embed", maxVectorsPerIndex: Math.max(20_000, CHUNKS) });
  const [probe] = await embed(["build"]);
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  start = performance.now();
  await index.search(userId, probe!, { k: 10 });
  const buildMs = performance.now() - start;
  lag.disable();
  figures.push({
    what: `vector index build (HNSW M=16, efConstruction=100, ${index.stats.lastBuildVectors} vectors, read from the database and built in slices of 10 ms)`,
    value: `${buildMs.toFixed(0)} ms (graph ${index.stats.lastBuildMs.toFixed(0)} ms incl. reads); event loop delay meanwhile: max ${(lag.max / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms`,
  });

  // 4. Per query: the question's embedding, the vector search, the lexical search, and hybrid (all of it, as retrieve.ts runs it).
  const search = new SemanticSearch({ db: store.db, model: "embed", embed, index });
  const narrowTo = fileIds.filter((_, i) => i % Math.max(1, Math.floor(fileIds.length / 5)) === 0).slice(0, 5);
  const questionVectors = new Map<string, number[]>();
  const embedOnly = await latencies(queries, async (q) => {
    const [v] = await embed([q.text]);
    questionVectors.set(q.text, v!);
    return 1;
  });
  figures.push({ what: `question embedding (${queries.length} queries, one call each)`, value: `p50 ${ms(embedOnly.p50)}, p99 ${ms(embedOnly.p99)}, mean ${ms(embedOnly.mean)}` });
  const vectorOnly = await latencies(queries, async (q) => (await index.search(userId, questionVectors.get(q.text)!, { k: 24 })).length);
  figures.push({ what: "vector search alone (the index's staleness check, one aggregate query, + HNSW top 24; vector given)", value: `p50 ${ms(vectorOnly.p50)}, p99 ${ms(vectorOnly.p99)}, mean ${ms(vectorOnly.mean)}` });
  for (const [what, only] of [["all files", undefined], [`${narrowTo.length} files`, narrowTo]] as const) {
    const r = await latencies(queries, async (q) => {
      const filter = only ? { fileIds: only } : {};
      const [lexical, semanticHits] = await Promise.all([
        searchChunks(store.db, store.dialect, { userId, query: q.text, limit: 24, ...filter }),
        search.search({ userId, query: q.text, limit: 24, ...filter }),
      ]);
      return reciprocalRankFusion([lexical, semanticHits], (h) => h.chunkId).slice(0, 10).length;
    });
    figures.push({
      what: `hybrid retrieval, ${what} (${queries.length} queries: embed question + vector top 24 + lexical top 24 + RRF, top 10)`,
      value: `p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, mean ${ms(r.mean)}, ${r.meanResult.toFixed(1)} hits on average`,
    });
  }
  return figures;
}

/**
 * HOOK — search TTFT: the time to first token a search-enabled chat request adds over a plain one
 * (needs a served model and a local search provider, not a database of ours; runs once per bench).
 */
async function processFigures(): Promise<Figure[]> {
  const runs = Number(args["ttft-runs"]);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--ttft-runs must be a positive whole number");
  return await searchTtftFigures(runs);
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;

/** p50/p99/mean of `run` over `items` (after WARM_UP unmeasured calls), and the mean of what it returned. */
async function latencies<T>(items: T[], run: (item: T) => Promise<number>): Promise<{ p50: number; p99: number; mean: number; meanResult: number }> {
  for (let i = 0; i < Math.min(WARM_UP, items.length); i++) await run(items[i]!);
  const times: number[] = [];
  let results = 0;
  for (const item of items) {
    const start = performance.now();
    results += await run(item);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), mean: times.reduce((a, b) => a + b, 0) / times.length, meanResult: results / items.length };
}

/** A user's library: files of CHUNKS_PER_FILE chunks (the last one may be shorter). */
function generateLibrary(chunks: number, seed: number): Chunk[][] {
  const random = mulberry32(seed);
  const { pick } = vocabulary(mulberry32(SEED), VOCABULARY);
  const files: Chunk[][] = [];
  for (let done = 0; done < chunks; done += CHUNKS_PER_FILE) files.push(fileChunks(random, pick, Math.min(CHUNKS_PER_FILE, chunks - done)));
  return files;
}

/** Writes a library as background indexing would; returns the file ids. */
async function writeLibrary(store: Store, userId: string, files: Chunk[][]): Promise<string[]> {
  const fileIds: string[] = [];
  for (const pieces of files) {
    const text = pieces.map((c) => c.text).join("\n\n");
    const file = await createFile(store.db, { userId, filename: `doc-${fileIds.length}.md`, mime: "text/markdown", purpose: "user_data", content: new TextEncoder().encode(text) });
    await setChunksTotal(store.db, file.id, pieces.length);
    for (let i = 0; i < pieces.length; i += BATCH) {
      if (!(await insertChunks(store.db, file.id, userId, pieces.slice(i, i + BATCH)))) throw new Error("file vanished while indexing");
    }
    await markIndexed(store.db, file.id);
    fileIds.push(file.id);
  }
  return fileIds;
}

async function benchDatabase(label: string, store: Store): Promise<void> {
  console.log(`\n## ${label}`);
  await writeLibrary(store, OTHER_USER, generateLibrary(OTHER_USER_CHUNKS, SEED + 1));
  const library = generateLibrary(CHUNKS, SEED + 2);
  const chars = library.flat().reduce((a, c) => a + c.text.length, 0);
  const start = performance.now();
  const fileIds = await writeLibrary(store, USER, library);
  const indexMs = performance.now() - start;
  console.log(
    `indexing: ${CHUNKS} chunks (${(chars / CHUNKS).toFixed(0)} chars on average) in ${fileIds.length} files, batches of ${BATCH}: ` +
      `${(indexMs / 1000).toFixed(2)} s = ${Math.round((CHUNKS / indexMs) * 1000)} chunks/s, ${((chars / 1024 / 1024) / (indexMs / 1000)).toFixed(2)} MiB of text/s (file bytes and progress updates included)`,
  );
  console.log(`size after indexing: ${await sizeOf(label, store)}`);
  if (store.dialect === "postgres") {
    // Autovacuum would analyze the fresh table soon; without statistics the planner guesses.
    await sql`analyze files`.execute(store.db);
    await sql`analyze file_chunks`.execute(store.db);
  }

  const { words } = vocabulary(mulberry32(SEED), VOCABULARY);
  const queries = benchQueries(mulberry32(SEED + 3), words, QUERIES);
  const narrowTo = fileIds.filter((_, i) => i % Math.max(1, Math.floor(fileIds.length / 5)) === 0).slice(0, 5);
  const rows: Array<[string, BenchQuery[], string[] | undefined]> = [
    ["keywords, all files", queries.filter((q) => q.kind === "keywords"), undefined],
    ["questions, all files", queries.filter((q) => q.kind === "question"), undefined],
    ["all queries, all files", queries, undefined],
    [`all queries, ${narrowTo.length} files`, queries, narrowTo],
  ];
  for (const [what, list, only] of rows) {
    const r = await latencies(list, async (q) => {
      const hits = await searchChunks(store.db, store.dialect, { userId: USER, query: q.text, limit: 10, ...(only ? { fileIds: only } : {}) });
      return hits.length;
    });
    console.log(`lexical search, ${what} (${list.length} queries, top 10): p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, mean ${ms(r.mean)}, ${r.meanResult.toFixed(1)} hits on average`);
  }
  for (const figure of await moreFigures({ store, label, userId: USER, fileIds, queries })) console.log(`${figure.what}: ${figure.value}`);
}

async function sizeOf(label: string, store: Store): Promise<string> {
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (store.dialect === "postgres") {
    const { rows } = await sql<{ chunks: number; blobs: number }>`select pg_total_relation_size('file_chunks') as chunks, pg_total_relation_size('file_blobs') as blobs`.execute(store.db);
    return `file_chunks with its indexes ${mb(Number(rows[0]!.chunks))}, file_blobs ${mb(Number(rows[0]!.blobs))}`;
  }
  const { rows } = await sql<{ name: string; size: number }>`select name, sum(pgsize) as size from dbstat group by name`.execute(store.db).catch(() => ({ rows: [] as { name: string; size: number }[] }));
  if (rows.length === 0) return `(dbstat unavailable for ${label})`;
  const of = (pattern: RegExp) => rows.filter((r) => pattern.test(r.name)).reduce((a, r) => a + Number(r.size), 0);
  return `file_chunks ${mb(of(/^file_chunks$|^file_chunks_(file|user)|autoindex_file_chunks/))}, FTS5 index ${mb(of(/^file_chunks_fts/))}, file_blobs ${mb(of(/^file_blobs|autoindex_file_blobs/))}`;
}

// ---- Machine facts, then the run ------------------------------------------------------------

const loadAverage = () => os.loadavg().map((v) => v.toFixed(2)).join(" ");

/** The filesystem type a path lives on (tmpfs makes SQLite's writes look cheaper than a disk's). */
async function filesystemOf(dir: string): Promise<string> {
  try {
    const { readFile } = await import("node:fs/promises");
    const mounts = (await readFile("/proc/mounts", "utf8")).split("\n").map((l) => l.split(" ")).filter((f) => f.length > 2);
    const best = mounts.filter(([, mount]) => dir === mount || dir.startsWith(mount!.endsWith("/") ? mount! : `${mount}/`)).sort((a, b) => b[1]!.length - a[1]!.length)[0];
    return best ? `${best[2]} (${best[1]})` : "unknown";
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "sputnik-bench-search-"));
  console.log(`# search bench: ${CHUNKS} chunks + ${OTHER_USER_CHUNKS} of another user, ${QUERIES} queries (+${WARM_UP} warm-up), seed ${SEED}`);
  console.log(`machine: ${cpus.length} CPUs (${cpus[0]?.model.trim() ?? "unknown"}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM (${(os.freemem() / 1024 ** 3).toFixed(1)} free), ${os.type()} ${os.release()}, Node ${process.version}`);
  console.log(`SQLite file in ${dataDir} on ${await filesystemOf(dataDir)}; load average at start ${loadAverage()}`);
  console.log(
    "confounds: the machine may be shared (other test runs: see the load averages); PostgreSQL runs on the same host and competes for the same cores; " +
      "SQLite is in-process and synchronous (its query time is event-loop time), PostgreSQL's includes a loopback round trip; " +
      "SQLite runs WAL with synchronous=NORMAL (no fsync per commit); FTS5 segments are left unmerged after the bulk load (as in use), PostgreSQL is ANALYZEd; " +
      "the whole index fits in RAM and caches are warm after the warm-up; the text is Zipf-distributed made-up words, not natural language.",
  );

  try {
    const sqlite = await openDatabase({ dataDir });
    try {
      const { rows } = await sql<{ v: string }>`select sqlite_version() as v`.execute(sqlite.db);
      console.log(`SQLite ${rows[0]!.v}`);
      await benchDatabase("sqlite", sqlite);
    } finally {
      await sqlite.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }

  const url = process.env.SPUTNIK_BENCH_PG_URL || testPostgresUrl();
  if (!(await postgresReachable(url))) {
    console.log(`\n## postgres\n!!! SKIPPED: PostgreSQL does not answer at ${url.replace(/\/\/[^@/]*@/, "//…@")} (set SPUTNIK_BENCH_PG_URL or start it) — no PostgreSQL figures in this run !!!`);
    console.error("bench:search: PostgreSQL part SKIPPED (server down)");
  } else {
    const schema = `bench_search_${randomBytes(6).toString("hex")}`;
    try {
      const postgres = await openDatabase({ url, schema, dataDir: os.tmpdir(), statementTimeoutMs: 0, queryTimeoutMs: 0 });
      try {
        const { rows } = await sql<{ v: string }>`select current_setting('server_version') as v`.execute(postgres.db);
        console.log(`\nPostgreSQL ${rows[0]!.v} at ${url.replace(/\/\/[^@/]*@/, "//…@")}, schema ${schema}`);
        await benchDatabase("postgres", postgres);
      } finally {
        await postgres.close();
      }
    } finally {
      const client = new pg.Client({ connectionString: url });
      client.on("error", () => {});
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`).finally(() => client.end());
    }
  }

  if (embedding) await (await embedding).model.dispose();

  console.log("\n## beyond the database");
  for (const figure of await processFigures()) console.log(`${figure.what}: ${figure.value}`);
  console.log(`\nload average at the end ${loadAverage()}`);
}

await main();

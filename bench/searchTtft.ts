/**
 * The time to first token a search-enabled chat request adds over a plain one (issue 15's bench,
 * the `processFigures` part of bench/search.ts; also runs alone: `node --import tsx bench/searchTtft.ts [runs]`).
 *
 * One Sputnik service in this process (startService: the only way to trust a local site's origin
 * for result pages) serving the `bench` model (random weights in Qwen2.5-0.5B's shape: realistic
 * compute, gibberish text), its `search.web` pointed at the real searx (Debian's package, json_engine
 * over a local site) when it is installed, else at a SearXNG-shaped route on the same local site.
 * The site serves realistic articles (5–10 KB of text each, with menus, sidebars and footers).
 *
 * Measured with one client (bench/stream.ts: streamed, greedy, first reasoning or content delta):
 *   - plain: the question alone;
 *   - search, cold: the first `web_search_options` request (searx asked, pages fetched and extracted);
 *   - search, warm: the same question again (searx asked again; the pages come from the page cache);
 *   - plain, as long: the question after article text of about the passages' length, no search —
 *     so "warm − as long" is what searching costs and "as long − plain" what the longer prompt costs.
 * Search requests ask `search_context_size: "low"` (about 1,000 tokens of passages) by default: on
 * a 2-core machine the prefill of "medium" (about 3,000) takes minutes per request under load.
 * Each request starts with a system message of its own (a nonce), so no request reuses another's
 * KV prefix (the reported cache-hit tokens show it); the disk context cache and re-reading answers
 * are off. Plain and search requests alternate, so drift in the machine's load hits both alike.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { readLocalKey } from "../src/auth/localMode.ts";
import { loadConfig } from "../src/config/load.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { startService, type RunningService } from "../src/runtime/startService.ts";
import { pageWithNavigation, startLocalSite, type LocalSite } from "../test/support/localSite.ts";
import { searxMissing, startSearx, type SearxProcess } from "../test/support/searx.ts";
import { streamChat, type ChatMessage, type StreamResult } from "./stream.ts";
import { mulberry32 } from "../src/gguf/random.ts";

export interface TtftFigure {
  what: string;
  value: string;
}

const QUESTION = "How do ground stations track satellites in low Earth orbit, and how long is a pass?";
const MAX_TOKENS = 4;
/** Threads for the model: the machine's cores, at most 4 (the bench model is small). */
const THREADS = Math.max(1, Math.min(4, os.cpus().length));

// ---- The local site: realistic articles ------------------------------------------------------


const SUBJECTS = [
  "The ground station", "A tracking antenna", "The flight dynamics team", "The operator on shift", "The mission control software",
  "Each satellite", "The spacecraft", "The receiver", "A parabolic dish", "The orbit determination process", "The network scheduler",
  "An amateur radio operator", "The telemetry decoder", "The launch provider", "The constellation", "The propulsion system",
];
const VERBS = [
  "predicts", "records", "corrects", "measures", "schedules", "compares", "estimates", "publishes", "updates", "checks",
  "follows", "reports", "calibrates", "reduces", "stores", "plans",
];
const OBJECTS = [
  "the two-line elements of the orbit", "the Doppler shift of the downlink signal", "the elevation of the next pass", "the azimuth and elevation angles",
  "the time of acquisition of signal", "the clock drift of the onboard computer", "the atmospheric drag on the spacecraft", "the link budget for the pass",
  "the handover to the next station", "the ranging measurements", "the attitude of the solar panels", "the battery state of charge",
  "the error ellipse of the position", "the collision warnings from the catalogue", "the frequency of the beacon", "the data volume of each contact",
];
const TAILS = [
  "before every contact", "with a margin of a few seconds", "several times a day", "using a Kalman filter", "as the satellite rises above the horizon",
  "during the short window of visibility", "in coordination with other stations", "when the solar activity is high", "after each manoeuvre",
  "with the help of GPS receivers", "for the whole constellation", "according to the published schedule", "so that no data is lost",
];

/** About `chars` characters of prose in paragraphs: template sentences, with the article's own facts among them. */
function prose(random: () => number, facts: string[], chars: number): string[] {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const paragraphs: string[] = [];
  let total = 0;
  let fact = 0;
  while (total < chars) {
    const sentences: string[] = [];
    const n = 4 + Math.floor(random() * 4);
    for (let i = 0; i < n; i++) {
      if (fact < facts.length && random() < 0.3) sentences.push(facts[fact++]!);
      else sentences.push(`${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)} ${pick(TAILS)}.`);
    }
    const paragraph = sentences.join(" ");
    paragraphs.push(paragraph);
    total += paragraph.length;
  }
  return paragraphs;
}

interface Article {
  slug: string;
  title: string;
  snippet: string;
  paragraphs: string[];
}

/** Six articles of 5–10 KB of text, in the order the search engine lists them. */
function articles(): Article[] {
  const topics: Array<{ slug: string; title: string; snippet: string; facts: string[] }> = [
    {
      slug: "tracking-leo",
      title: "How ground stations track satellites in low Earth orbit",
      snippet: "Ground stations point their antennas using predicted orbits; a pass lasts about ten minutes.",
      facts: [
        "A satellite in low Earth orbit is visible from one ground station for about five to fifteen minutes per pass.",
        "Ground stations track satellites by predicting their position from orbital elements and steering the antenna in azimuth and elevation.",
        "The highest passes go almost overhead and last the longest; low passes near the horizon may last only a few minutes.",
        "Tracking corrects for the Doppler shift, which can reach tens of kilohertz at UHF frequencies during a low Earth orbit pass.",
      ],
    },
    {
      slug: "orbit-determination",
      title: "Orbit determination for small satellites",
      snippet: "Ranging, Doppler and GPS measurements refine the predicted orbit.",
      facts: [
        "Orbit determination combines ranging, Doppler and angle measurements from ground stations into an estimate of the orbit.",
        "Many small satellites carry GPS receivers, so their orbit is known to a few metres without tracking from the ground.",
      ],
    },
    {
      slug: "station-networks",
      title: "Ground station networks and pass scheduling",
      snippet: "Networks of stations share passes so that a satellite is contacted many times a day.",
      facts: [
        "A single ground station sees a satellite in low Earth orbit on four to six passes a day.",
        "Networks of ground stations around the world schedule passes so that each satellite has several contacts per orbit.",
      ],
    },
    {
      slug: "antennas",
      title: "Antennas and mounts for satellite tracking",
      snippet: "Azimuth-elevation mounts, keyhole problems and slew rates.",
      facts: ["An azimuth-elevation mount must slew fast near the zenith, which is why overhead passes are the hardest to track."],
    },
    { slug: "launch-history", title: "A short history of launches", snippet: "From Sputnik 1 to reusable boosters.", facts: ["Sputnik 1 was launched on 4 October 1957."] },
    { slug: "space-food", title: "What astronauts eat", snippet: "Food on the International Space Station.", facts: ["Astronauts eat three meals a day on the station."] },
  ];
  return topics.map((topic, i) => {
    const random = mulberry32(1500 + i);
    const chars = 5_000 + Math.floor(random() * 5_000);
    return { slug: topic.slug, title: topic.title, snippet: topic.snippet, paragraphs: prose(random, topic.facts, chars) };
  });
}

const textBytes = (article: Article) => Buffer.byteLength(article.paragraphs.join("\n\n"));

interface SearchSite {
  site: LocalSite;
  articles: Article[];
  /** Times the search engine asked the site for results (one per search). */
  searches(): number;
  /** Article pages served. */
  pagesServed(): number;
}

/** The articles, the JSON endpoint searx's json_engine reads (`/api`), and a SearXNG-shaped `/search` for when searx is missing. */
async function startSearchSite(): Promise<SearchSite> {
  const list = articles();
  const pages = new Map(list.map((a) => [`/articles/${a.slug}`, pageWithNavigation(a.title, a.paragraphs)]));
  let site: LocalSite;
  const results = () => list.map((a) => ({ url: `${site.origin}/articles/${a.slug}`, title: a.title, content: a.snippet }));
  const json = (res: ServerResponse, body: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  const routes: Parameters<typeof startLocalSite>[0] = {
    "/api": (_req, res) => json(res, { results: results() }),
    "/search": (_req, res, url) => json(res, { query: url.searchParams.get("q") ?? "", results: results().map((r) => ({ ...r, engine: "local" })) }),
  };
  for (const [route, html] of pages) routes[route] = (_req, res) => res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
  site = await startLocalSite(routes);
  return {
    site,
    articles: list,
    searches: () => (site.hits.get("/api") ?? 0) + (site.hits.get("/search") ?? 0),
    pagesServed: () => site.requests.filter((p) => p.startsWith("/articles/")).length,
  };
}

// ---- Measuring -------------------------------------------------------------------------------

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[sorted.length >> 1]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};
const ms = (v: number) => `${v.toFixed(0)} ms`;
const signed = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(0)} ms`;
const loadAverage = () => os.loadavg().map((v) => v.toFixed(2)).join(" ");
const list = (values: number[]) => values.map((v) => v.toFixed(0)).join(", ");

/**
 * Runs the measurement and returns its figures (and logs progress with `log`). `runs`: requests of
 * each warm kind (plain, search with cached pages, plain as long); the cold search is one request.
 */
export async function searchTtftFigures(
  runs = 3,
  log: (line: string) => void = console.log,
  /** OpenAI's `search_context_size`: how many tokens of passages (low ≈ 1,000, medium ≈ 3,000); low keeps a CPU run short. */
  contextSize: "low" | "medium" | "high" = "low",
): Promise<TtftFigure[]> {
  const loadBefore = loadAverage();
  const modelStarted = performance.now();
  const modelPath = await ensureModel("bench"); // generated on first use (~525 MB, a minute or so)
  const modelSeconds = (performance.now() - modelStarted) / 1000;
  const searchSite = await startSearchSite();
  const { site } = searchSite;
  let searx: SearxProcess | undefined;
  let service: RunningService | undefined;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "sputnik-bench-search-ttft-"));
  try {
    const missing = searxMissing();
    let providerUrl: string;
    let provider: string;
    if (missing === null) {
      searx = await startSearx({ engineUrl: `${site.origin}/api?q={query}` });
      providerUrl = searx.url;
      provider = "the real searx (Debian's searx 1.1.0 on loopback, its json_engine reading the local site's result list)";
    } else {
      providerUrl = site.origin;
      provider = `a SearXNG-shaped JSON route on the local site (searx is not available here: ${missing})`;
    }
    log(`search TTFT: provider ${provider}; ${searchSite.articles.length} articles of ${searchSite.articles.map((a) => (textBytes(a) / 1024).toFixed(1)).join(", ")} KB of text (+ menus, sidebar, footer)`);
    if (modelSeconds > 5) log(`search TTFT: the bench model was generated first (${modelSeconds.toFixed(0)} s)`);

    const config = loadConfig({
      env: {},
      flags: {
        host: "127.0.0.1",
        port: 0,
        dataDir,
        models: [modelPath],
        threads: THREADS,
        parallel: 1,
        contextSize: 8192,
        pullDefaultModel: false,
        logLevel: "silent",
        // No KV state reused across requests: not from disk, not from re-read answers.
        localEngine: { contextCache: { enabled: false }, models: { bench: { rereads: false } } },
        search: {
          web: { provider: "searxng", url: providerUrl, allowPrivateNetwork: true, allowHttp: true, maxResults: 8, pagesToRead: 3, cacheTtlMs: 10 * 60_000, fetchTimeoutMs: 8000 },
        },
      },
    });
    service = await startService(config, { trustedPageOrigins: [site.origin] });
    const apiKey = (await readLocalKey(dataDir)) ?? undefined;
    const url = service.url;

    let nonce = 0;
    const ask = (kind: "plain" | "search" | "long", filler = ""): Promise<StreamResult> => {
      // A system message of its own first: no request can reuse another's KV prefix.
      const messages: ChatMessage[] = [
        { role: "system", content: `Session ${++nonce}-${Math.random().toString(36).slice(2, 10)}. You are a helpful assistant.` },
        { role: "user", content: kind === "long" ? `${filler}\n\nQuestion: ${QUESTION}` : QUESTION },
      ];
      // streamChat sends its body as it is: the option rides along (its type names only the common fields).
      const body = { model: "bench", messages, max_tokens: MAX_TOKENS, ...(kind === "search" ? { web_search_options: { search_context_size: contextSize } } : {}) };
      const started = performance.now();
      return streamChat(url, body, apiKey).then((r) => {
        log(`  search TTFT, ${kind}: ttft ${ms(r.ttftMs)}, ${r.promptTokens} prompt tokens, ${ms(performance.now() - started)} in all`);
        return r;
      });
    };

    const plainProbe = await ask("plain"); // model loaded and first-use costs paid, unmeasured
    const searchesBefore = searchSite.searches();
    const cold = await ask("search");
    const coldPages = searchSite.pagesServed();
    if (searchSite.searches() !== searchesBefore + 1) throw new Error("the search-enabled request did not search");
    const addedTokens = (cold.promptTokens ?? 0) - (plainProbe.promptTokens ?? 0);

    // Plain text as long as the passages: article text, its length fitted to the passages' tokens
    // from the characters per token of a short probe (2,000 characters: cheap to prefill).
    const source = searchSite.articles.slice(0, 3).flatMap((a) => a.paragraphs).join("\n\n");
    const probe = await ask("long", source.slice(0, 2000));
    const probeAdded = (probe.promptTokens ?? 0) - (plainProbe.promptTokens ?? 0);
    const charsPerToken = probeAdded > 0 ? 2000 / probeAdded : 4;
    const filler = source.slice(0, Math.max(0, Math.round(charsPerToken * addedTokens)));

    const plain: StreamResult[] = [];
    const warm: StreamResult[] = [];
    const long: StreamResult[] = [];
    const order = ["plain", "search", "long"] as const;
    for (let i = 0; i < runs; i++) {
      // Rotated each round, so no kind always follows the same one.
      for (let j = 0; j < order.length; j++) {
        const kind = order[(i + j) % order.length]!;
        const result = await ask(kind, filler);
        (kind === "plain" ? plain : kind === "search" ? warm : long).push(result);
      }
    }
    const warmPagesFetched = searchSite.pagesServed() - coldPages;

    // The search server alone, as the service asks it (same query, JSON).
    const direct: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const res = await fetch(`${providerUrl}/search?q=${encodeURIComponent(QUESTION)}&format=json`);
      await res.arrayBuffer();
      direct.push(performance.now() - started);
    }
    const loadAfter = loadAverage();

    const ttft = (rs: StreamResult[]) => rs.map((r) => r.ttftMs);
    const plainP50 = median(ttft(plain));
    const warmP50 = median(ttft(warm));
    const longP50 = median(ttft(long));
    const tokens = (rs: StreamResult[]) => median(rs.map((r) => r.promptTokens ?? Number.NaN));
    const hits = (rs: StreamResult[]) => Math.max(0, ...rs.map((r) => r.cacheHitTokens ?? 0));
    const all = [cold, ...plain, ...warm, ...long];
    return [
      { what: "search TTFT, setup", value: `bench model (Qwen2.5-0.5B shape, random weights, Q8_0), ${THREADS} threads, 1 sequence, context 8192; provider: ${provider}; ${runs} requests of each kind, max_tokens ${MAX_TOKENS}, search_context_size "${contextSize}"` },
      { what: "TTFT plain (p50)", value: `${ms(plainP50)} [${list(ttft(plain))}], ${tokens(plain)} prompt tokens` },
      { what: "TTFT search, first request (cold: searx + 3 pages fetched and extracted)", value: `${ms(cold.ttftMs)} (${signed(cold.ttftMs - plainP50)} vs plain), ${cold.promptTokens} prompt tokens, ${coldPages} page requests to the site (3 pages wanted; a page not read in time is replaced by the next result)` },
      { what: "TTFT search, warm (pages from the cache; searx still asked) (p50)", value: `${ms(warmP50)} [${list(ttft(warm))}] → added ${signed(warmP50 - plainP50)} vs plain, ${tokens(warm)} prompt tokens, ${warmPagesFetched} pages fetched` },
      { what: "TTFT plain with a prompt as long (article text, no search) (p50)", value: `${ms(longP50)} [${list(ttft(long))}], ${tokens(long)} prompt tokens` },
      {
        what: "added TTFT split (warm)",
        value: `longer prompt (prefill) ≈ ${signed(longP50 - plainP50)}, searching (provider, cached pages, ranking) ≈ ${signed(warmP50 - longP50)}; the search server alone answers in ${ms(median(direct))} (p50 of ${runs})`,
      },
      { what: "prompt tokens added by the passages", value: `${tokens(warm) - tokens(plain)} (search ${tokens(warm)} vs plain ${tokens(plain)})` },
      {
        what: "search TTFT confounds",
        value:
          `load average ${loadBefore} before, ${loadAfter} after, on ${os.cpus().length} cores (other processes share them: searx and the local site run on the same cores as the model); ` +
          `the search prompt is longer, so prefill grows with the passages (the "as long" row separates that); the cold figure is one request; ` +
          `most KV cache-hit tokens in any measured request: ${hits(all)} (a per-request nonce defeats prefix reuse); random weights: real models of this shape cost the same per token`,
      },
    ];
  } finally {
    await service?.close();
    await searx?.stop();
    await site.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const runs = Number(process.argv[2] ?? 4);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("usage: node --import tsx bench/searchTtft.ts [runs]");
  for (const figure of await searchTtftFigures(runs)) console.log(`${figure.what}: ${figure.value}`);
}

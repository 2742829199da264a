/**
 * Reads result pages for a web search. Result URLs (and their redirects) are chosen by whoever
 * wrote the pages the search engine indexed, so every request goes through the egress guard
 * (src/models/http.ts guardedGet: each hop's URL checked, DNS answers checked on the addresses
 * the socket uses) with a policy that never allows the private network. On top of that: a time
 * limit per page, a byte limit (bigger pages are refused, not truncated), only text/html,
 * application/xhtml+xml and text/plain, a per-host connection limit, and a TTL cache.
 *
 * The main text comes from documents/html.ts (Readability over linkedom), run in a worker thread
 * by htmlExtractor.ts: its cost grows with the page (seconds for a megabyte), so it never runs on
 * the event loop, and the page is bounded by `maxPageBytes` before it is parsed.
 */
import type { IncomingMessage } from "node:http";
import { ModelError } from "../../models/errors.ts";
import { guardedGet } from "../../models/http.ts";
import { assertUrlAllowed, type NetworkPolicy } from "../../models/netguard.ts";
import type { WebSearchConfig } from "./config.ts";
import { HostLimiter } from "./hostLimiter.ts";
import { HtmlExtractionError, HtmlExtractor } from "./htmlExtractor.ts";
import { PageCache, type CachedPage } from "./pageCache.ts";

export interface FetchedPage {
  /** The result URL as offered. */
  url: string;
  /** Where the text came from, after redirects. */
  finalUrl: string;
  /** Empty when the page has none (searchWeb then uses the result's title). */
  title: string;
  text: string;
}

export type FetchOutcome =
  | { ok: true; page: FetchedPage; cached: boolean }
  /**
   * `refused`: a policy said no (address, protocol, type, size); otherwise it failed (status,
   * network, time). `blocked`: the egress guard itself refused (the URL or a redirect).
   */
  | { ok: false; url: string; reason: string; refused: boolean; blocked: boolean };

/** What the fetcher logs: pino's Logger fits. */
export interface WebLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type PageFetcherLimits = Pick<
  WebSearchConfig,
  "allowHttpPages" | "fetchTimeoutMs" | "maxPageBytes" | "perHostConcurrency" | "cacheTtlMs" | "cacheMaxEntries" | "cacheMaxChars" | "userAgent"
>;

export interface PageFetcherDeps {
  logger: WebLogger;
  /**
   * Origins whose pages may sit on private addresses. Deliberately not in the config: result pages
   * never get the private network. Tests use it for their local site on 127.0.0.1 — one exact
   * origin, so redirects from it to other loopback ports or names are still refused.
   */
  trustedPageOrigins?: readonly string[];
  now?: () => number;
}

const ACCEPTED_TYPES = new Set(["text/html", "application/xhtml+xml", "text/plain"]);
/** Guard refusals (the request was never made, or stopped at the refused hop). */
const POLICY_CODES = new Set(["blocked_address", "insecure_protocol", "bad_source", "too_many_redirects"]);
const MAX_LOGGED_URL = 2000;

class PageRefused extends Error {
  constructor(message: string, readonly refused: boolean) {
    super(message);
  }
}

export class PageFetcher {
  private readonly policy: NetworkPolicy;
  private readonly hosts: HostLimiter;
  private readonly cache: PageCache;
  private readonly inFlight = new Map<string, Promise<FetchOutcome>>();
  private readonly extractor: HtmlExtractor;

  constructor(
    private readonly limits: PageFetcherLimits,
    private readonly deps: PageFetcherDeps,
  ) {
    this.policy = { allowPrivateNetwork: false, allowHttp: limits.allowHttpPages, privateOrigins: deps.trustedPageOrigins ?? [] };
    this.hosts = new HostLimiter(limits.perHostConcurrency);
    this.cache = new PageCache({ ttlMs: limits.cacheTtlMs, maxEntries: limits.cacheMaxEntries, maxChars: limits.cacheMaxChars }, deps.now);
    this.extractor = new HtmlExtractor({ timeoutMs: limits.fetchTimeoutMs });
  }

  /** Ends the extraction worker (it also ends by itself when idle). */
  close(): Promise<void> {
    return this.extractor.close();
  }

  /**
   * The guard's check on the URL itself (protocol, credentials, literal addresses), without any
   * request: null when it may be fetched. Names are checked when they resolve, in fetch().
   */
  check(url: string): string | null {
    if (url.length > 4096) return "the URL is too long";
    try {
      assertUrlAllowed(new URL(url), this.policy);
      return null;
    } catch (error) {
      if (error instanceof ModelError) return guardReason(error);
      return "not a valid URL";
    }
  }

  /** Reads one page; never throws for the page's sake (only when `signal` aborts). Refusals are logged. */
  async fetch(url: string, options: { signal?: AbortSignal } = {}): Promise<FetchOutcome> {
    const key = cacheKey(url);
    const cached = key === null ? undefined : this.cache.get(key);
    if (cached) return { ok: true, page: toPage(url, cached), cached: true };
    const pending = key === null ? undefined : this.inFlight.get(key);
    if (pending) {
      try {
        return withUrl(await pending, url);
      } catch {
        // The other reader gave up (its signal): read it for this caller.
      }
    }
    const attempt = this.read(url, options.signal).then(
      (page): FetchOutcome => {
        if (key !== null) this.cache.set(key, page);
        return { ok: true, page: toPage(url, page), cached: false };
      },
      (error: unknown): FetchOutcome => {
        if (options.signal?.aborted) throw options.signal.reason ?? error;
        const outcome = describe(url, error);
        const log = { url: url.slice(0, MAX_LOGGED_URL), reason: outcome.reason };
        if (outcome.refused) this.deps.logger.warn(log, "web search: refused to read a result page");
        else this.deps.logger.debug(log, "web search: could not read a result page");
        return outcome;
      },
    );
    if (key !== null) {
      this.inFlight.set(key, attempt);
      void attempt.finally(() => this.inFlight.delete(key)).catch(() => {});
    }
    return attempt;
  }

  get cacheStats(): { entries: number; chars: number } {
    return this.cache.stats;
  }

  private async read(url: string, callerSignal: AbortSignal | undefined): Promise<CachedPage> {
    const target = new URL(url);
    assertUrlAllowed(target, this.policy); // before queueing for the host: a refused URL waits for nothing
    const { body, type, charset, finalUrl } = await this.download(target, callerSignal);
    const decoded = decode(body, charset);
    const extracted = type === "text/plain" ? { title: null, text: decoded.replace(/\r\n?/g, "\n").trim() } : await this.extractMain(decoded, finalUrl, callerSignal);
    if (!extracted.text.trim()) throw new PageRefused("no readable text on the page", false);
    return { url, finalUrl: finalUrl.href, title: extracted.title, text: extracted.text };
  }

  /** The page's bytes, holding one of the host's connection slots only while downloading. */
  private async download(target: URL, callerSignal: AbortSignal | undefined) {
    const release = await this.hosts.acquire(target.hostname, callerSignal);
    const timeout = AbortSignal.timeout(this.limits.fetchTimeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
    try {
      const { response, url: finalUrl } = await guardedGet(target, {
        policy: this.policy,
        headers: { "user-agent": this.limits.userAgent, accept: "text/html, application/xhtml+xml, text/plain;q=0.9" },
        signal,
      });
      return { ...(await this.readBody(response, signal)), finalUrl };
    } catch (error) {
      if (timeout.aborted && !callerSignal?.aborted) throw new PageRefused(`no complete answer within ${this.limits.fetchTimeoutMs} ms`, false);
      throw error;
    } finally {
      release();
    }
  }

  private async extractMain(html: string, url: URL, signal: AbortSignal | undefined): Promise<{ title: string | null; text: string }> {
    try {
      return await this.extractor.extract(html, url.href, signal);
    } catch (error) {
      if (error instanceof HtmlExtractionError) throw new PageRefused(`the page could not be read: ${error.message}`, false);
      throw error;
    }
  }

  private async readBody(response: IncomingMessage, signal: AbortSignal): Promise<{ body: Buffer; type: string; charset: string | null }> {
    const max = this.limits.maxPageBytes;
    try {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) throw new PageRefused(`HTTP ${status}`, false);
      const { type, charset } = parseContentType(response.headers["content-type"]);
      if (!ACCEPTED_TYPES.has(type)) throw new PageRefused(`content type ${type || "(none)"} is not read (only HTML and plain text)`, true);
      const encoding = (response.headers["content-encoding"] ?? "identity").toLowerCase();
      if (encoding !== "identity") throw new PageRefused(`content encoding ${encoding} was not asked for`, true);
      const declared = Number(response.headers["content-length"]);
      if (Number.isFinite(declared) && declared > max) throw new PageRefused(`the page is larger than ${max} bytes`, true);
      const chunks: Buffer[] = [];
      let size = 0;
      const onAbort = () => response.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        for await (const chunk of response as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > max) throw new PageRefused(`the page is larger than ${max} bytes`, true);
          chunks.push(chunk);
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
      return { body: Buffer.concat(chunks, size), type, charset };
    } finally {
      if (!response.readableEnded) response.destroy(); // release the socket of a refused or abandoned body
    }
  }
}

function describe(url: string, error: unknown): Extract<FetchOutcome, { ok: false }> {
  if (error instanceof PageRefused) return { ok: false, url, reason: error.message, refused: error.refused, blocked: false };
  if (error instanceof ModelError) {
    const blocked = POLICY_CODES.has(error.code);
    return { ok: false, url, reason: guardReason(error), refused: blocked, blocked };
  }
  if (error instanceof TypeError) return { ok: false, url, reason: "not a valid URL", refused: true, blocked: true };
  return { ok: false, url, reason: error instanceof Error ? error.message : String(error), refused: false, blocked: false };
}

/**
 * The guard's messages are written for `sputnik pull` and end with its command-line hints
 * (--allow-private-network, --allow-http, HF_TOKEN), which mean nothing for a result page.
 */
export function guardReason(error: ModelError): string {
  if (error.code === "bad_source") return "URLs with embedded credentials are not read.";
  return error.message
    .replace(/ Allow it explicitly \(--allow-private-network\) if this is intended\.$/, "")
    .replace(/: use https:, or allow http explicitly \(--allow-http\)\.$/, ": plain http pages are not read (webSearch.allowHttpPages).");
}

function withUrl(outcome: FetchOutcome, url: string): FetchOutcome {
  return outcome.ok ? { ...outcome, page: { ...outcome.page, url }, cached: true } : { ...outcome, url };
}

function toPage(url: string, page: CachedPage): FetchedPage {
  return { url, finalUrl: page.finalUrl, title: page.title ?? "", text: page.text }; // no title: the caller knows the result's
}

function cacheKey(url: string): string | null {
  try {
    const parsed = new URL(url);
    parsed.hash = "";
    return parsed.href;
  } catch {
    return null;
  }
}

function parseContentType(header: string | undefined): { type: string; charset: string | null } {
  if (!header) return { type: "", charset: null };
  const [type, ...params] = header.split(";");
  const charset = params.map((p) => p.trim()).find((p) => p.toLowerCase().startsWith("charset="));
  return { type: type!.trim().toLowerCase(), charset: charset ? charset.slice(8).replace(/^"|"$/g, "").trim() : null };
}

function decode(body: Buffer, charset: string | null): string {
  try {
    return new TextDecoder(charset ?? "utf-8").decode(body);
  } catch {
    return new TextDecoder("utf-8").decode(body); // an unknown label: UTF-8 is the web's default
  }
}

import { z } from "zod";

/**
 * Web search (config key `webSearch`): which provider answers queries, and the limits on reading
 * the result pages. The provider URL is the operator's; result URLs come from the web, so only the
 * provider may be allowed onto the private network (`allowPrivateNetwork`), never the pages.
 *
 *   "webSearch": { "provider": "searxng", "url": "http://searxng.internal:8080", "allowPrivateNetwork": true, "allowHttp": true }
 *   "webSearch": { "provider": "brave", "apiKey": "BSA…" }
 */
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), "must be an http:// or https:// URL");

export const webSearchConfigSchema = z
  .object({
    provider: z.enum(["searxng", "brave"]).default("searxng"),
    /**
     * The provider's base URL: SearXNG's instance root (requests go to `<url>/search`); for Brave
     * the API endpoint, defaulting to `https://api.search.brave.com/res/v1/web/search`.
     */
    url: httpUrl.optional(),
    /** The provider's API key (Brave: the X-Subscription-Token). */
    apiKey: z.string().min(1).max(512).optional(),
    /**
     * Let the provider URL's origin (only it: not its redirects elsewhere, never the result pages)
     * be on a private or loopback address, e.g. a SearXNG container beside the service.
     */
    allowPrivateNetwork: z.boolean().default(false),
    /** Allow a plain http:// provider URL (a SearXNG on the private network). */
    allowHttp: z.boolean().default(false),
    /** Read result pages served over plain http:// (a redirect from https to http is refused regardless). */
    allowHttpPages: z.boolean().default(true),
    /** Results asked of the provider per search. */
    maxResults: z.number().int().min(1).max(50).default(8),
    /** Result pages read per search (failed or refused ones are replaced by the next results). */
    pagesToRead: z.number().int().min(0).max(10).default(3),
    /**
     * Time limit for the provider call and for each page (connect, redirects and body), and again
     * for extracting a page's text (in a worker thread).
     */
    fetchTimeoutMs: z.number().int().min(100).max(60_000).default(8000),
    /** Time limit for a whole search (provider and pages); pages not read by then are skipped. */
    searchTimeoutMs: z.number().int().min(200).max(120_000).default(20_000),
    /**
     * Largest page body read, in bytes (bigger ones are refused, not truncated). This also bounds
     * the HTML parse (about 3 ms per KiB, in a worker thread, one page at a time): keep it modest.
     */
    maxPageBytes: z.number().int().min(1024).max(8 * 1024 * 1024).default(1024 * 1024),
    /** Connections at a time to one host (politeness). */
    perHostConcurrency: z.number().int().min(1).max(8).default(2),
    /** How long a read page is reused; 0 turns the cache off. */
    cacheTtlMs: z.number().int().min(0).max(7 * 24 * 3600_000).default(10 * 60_000),
    /** Pages kept in the cache at most… */
    cacheMaxEntries: z.number().int().min(0).max(100_000).default(256),
    /** …and their extracted text at most, in characters. */
    cacheMaxChars: z.number().int().min(0).max(512 * 1024 * 1024).default(16 * 1024 * 1024),
    /** Sent with page fetches so site operators can tell who reads them. */
    userAgent: z.string().min(1).max(256).default("SputnikBot/0.1 (web search for a Sputnik answer)"),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.provider === "searxng" && config.url === undefined) {
      ctx.addIssue({ code: "custom", path: ["url"], message: "the SearXNG provider needs its instance URL" });
    }
    if (config.provider === "brave" && config.apiKey === undefined) {
      ctx.addIssue({ code: "custom", path: ["apiKey"], message: "the Brave provider needs an API key" });
    }
  });

export type WebSearchConfig = z.infer<typeof webSearchConfigSchema>;

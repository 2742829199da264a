/**
 * SearXNG's JSON API: `GET <instance>/search?q=…&format=json` (the instance must list `json` in
 * `search.formats`). The answer is `{ query, number_of_results, results: [{ url, title, content,
 * engine, score, category, … }], answers, suggestions, infoboxes, unresponsive_engines }`; only
 * `results` is used, in the order given (SearXNG has already merged and scored its engines).
 */
import { z } from "zod";
import { ServiceError } from "../../../errors.ts";
import { plainText, providerGetJson, webUrl, type ProviderEndpoint } from "./request.ts";
import type { WebResult, WebSearchProvider } from "./types.ts";

const searxngAnswerSchema = z.object({
  results: z.array(z.object({ url: z.unknown(), title: z.unknown(), content: z.unknown(), engine: z.unknown() }).partial()),
});

export interface SearxngOptions extends ProviderEndpoint {
  /** Passed as `language` when set (SearXNG's own default otherwise). */
  language?: string;
}

export class SearxngProvider implements WebSearchProvider {
  readonly name = "searxng";

  constructor(private readonly options: SearxngOptions) {}

  async search(query: string, opts: { count: number; signal?: AbortSignal }): Promise<WebResult[]> {
    const url = new URL("search", this.options.url.endsWith("/") ? this.options.url : `${this.options.url}/`);
    url.searchParams.set("q", query);
    url.searchParams.set("format", "json");
    if (this.options.language) url.searchParams.set("language", this.options.language);
    const body = await providerGetJson(this.name, this.options, url, { signal: opts.signal });
    const parsed = searxngAnswerSchema.safeParse(body);
    if (!parsed.success) {
      throw new ServiceError("upstream", "The web search provider (searxng) answered without a results list; is `json` in its search.formats?", {
        code: "search_provider_error",
      });
    }
    return toResults(parsed.data.results, opts.count);
  }
}

function toResults(items: Array<{ url?: unknown; title?: unknown; content?: unknown; engine?: unknown }>, count: number): WebResult[] {
  const results: WebResult[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    if (results.length >= count) break;
    const url = webUrl(item.url);
    if (url === null || seen.has(url)) continue;
    seen.add(url);
    const result: WebResult = { url, title: plainText(item.title, 300) || url, snippet: plainText(item.content) };
    if (typeof item.engine === "string") result.engine = item.engine;
    results.push(result);
  }
  return results;
}

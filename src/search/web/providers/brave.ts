/**
 * The Brave Search API (an example of a keyed provider): `GET <endpoint>?q=…&count=…` with the
 * key in `X-Subscription-Token`; the answer carries `web.results: [{ url, title, description }]`,
 * the description with `<strong>` around matched words.
 */
import { z } from "zod";
import { ServiceError } from "../../../errors.ts";
import { plainText, providerGetJson, webUrl, type ProviderEndpoint } from "./request.ts";
import type { WebResult, WebSearchProvider } from "./types.ts";

export const BRAVE_ENDPOINT = "https://api.search.brave.com/res/v1/web/search";
/** Brave's own maximum for `count`. */
const BRAVE_MAX_COUNT = 20;

const braveAnswerSchema = z.object({
  web: z.object({ results: z.array(z.object({ url: z.unknown(), title: z.unknown(), description: z.unknown() }).partial()) }).optional(),
});

export interface BraveOptions extends ProviderEndpoint {
  apiKey: string;
}

export class BraveProvider implements WebSearchProvider {
  readonly name = "brave";

  constructor(private readonly options: BraveOptions) {}

  async search(query: string, opts: { count: number; signal?: AbortSignal }): Promise<WebResult[]> {
    const url = new URL(this.options.url);
    url.searchParams.set("q", query);
    url.searchParams.set("count", String(Math.min(Math.max(1, opts.count), BRAVE_MAX_COUNT)));
    const body = await providerGetJson(this.name, this.options, url, {
      signal: opts.signal,
      secretHeaders: { "x-subscription-token": this.options.apiKey },
    });
    const parsed = braveAnswerSchema.safeParse(body);
    if (!parsed.success) {
      throw new ServiceError("upstream", "The web search provider (brave) answered in an unexpected shape.", { code: "search_provider_error" });
    }
    const results: WebResult[] = [];
    const seen = new Set<string>();
    for (const item of parsed.data.web?.results ?? []) {
      if (results.length >= opts.count) break;
      const resultUrl = webUrl(item.url);
      if (resultUrl === null || seen.has(resultUrl)) continue;
      seen.add(resultUrl);
      results.push({ url: resultUrl, title: plainText(item.title, 300) || resultUrl, snippet: plainText(item.description), engine: "brave" });
    }
    return results;
  }
}

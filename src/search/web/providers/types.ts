/**
 * The web search provider interface: a provider turns a query into ranked result links with
 * snippets; reading the pages behind them is pageFetcher.ts's job, not the provider's, so every
 * provider gets the same egress guard and limits for the pages.
 */
export interface WebResult {
  url: string;
  title: string;
  /** Plain text (markup stripped): it goes into a prompt and is never rendered as HTML. */
  snippet: string;
  /** The engine that found it, where the provider says (SearXNG aggregates several). */
  engine?: string;
}

export interface WebSearchProvider {
  readonly name: string;
  search(query: string, opts: { count: number; signal?: AbortSignal }): Promise<WebResult[]>;
}

/**
 * One web search: ask the provider, then read the top result pages through the page fetcher
 * (egress guard, limits, cache) until `pagesToRead` pages have text, replacing failed or refused
 * ones with the next results. The whole search has a deadline: pages not read by then are left
 * out and the search answers with what it has (a slow site never holds the request).
 *
 * Results whose URL the egress guard refuses (private, loopback, metadata addresses, also when a
 * redirect leads there) are dropped from `results` as well: they are neither read nor offered as
 * sources. Those refused for their content (type, size) stay as snippet-only results.
 */
import { ServiceError } from "../../errors.ts";
import type { WebSearchConfig } from "./config.ts";
import { PageFetcher, type FetchedPage, type WebLogger } from "./pageFetcher.ts";
import { createWebSearchProvider } from "./providers/index.ts";
import type { WebResult, WebSearchProvider } from "./providers/types.ts";

export type { FetchedPage } from "./pageFetcher.ts";
export type { WebResult } from "./providers/types.ts";

export interface WebSearchDeps {
  provider: WebSearchProvider;
  fetcher: PageFetcher;
  config: Pick<WebSearchConfig, "maxResults" | "pagesToRead" | "searchTimeoutMs">;
  logger: WebLogger;
}

export interface WebSearchOutcome {
  /** The provider's results in its order, less those the egress guard refused. */
  results: WebResult[];
  /** Pages read, in result order. */
  pages: FetchedPage[];
  /** Result pages not read because a policy said no (address, protocol, type, size); each was logged. */
  refused: { url: string; reason: string }[];
  /** Result pages that could not be read (HTTP errors, timeouts, no text). */
  failed: { url: string; reason: string }[];
}

/** Builds the provider and a page fetcher (one per process: its cache and host limits are shared). */
export function createWebSearchDeps(
  config: WebSearchConfig,
  options: { logger: WebLogger; trustedPageOrigins?: readonly string[] },
): WebSearchDeps {
  return {
    provider: createWebSearchProvider(config),
    fetcher: new PageFetcher(config, { logger: options.logger, trustedPageOrigins: options.trustedPageOrigins }),
    config,
    logger: options.logger,
  };
}

export async function searchWeb(deps: WebSearchDeps, query: string, options: { signal?: AbortSignal } = {}): Promise<WebSearchOutcome> {
  const { signal } = options;
  const deadline = AbortSignal.timeout(deps.config.searchTimeoutMs);
  const within = signal ? AbortSignal.any([signal, deadline]) : deadline;

  let offered: WebResult[];
  try {
    offered = await deps.provider.search(query, { count: deps.config.maxResults, signal: within });
  } catch (error) {
    if (signal?.aborted) throw signal.reason ?? error;
    if (deadline.aborted) {
      throw new ServiceError("upstream", `The web search provider (${deps.provider.name}) did not answer within ${deps.config.searchTimeoutMs} ms.`, {
        code: "search_provider_timeout",
        cause: error,
      });
    }
    throw error;
  }

  const refused: WebSearchOutcome["refused"] = [];
  const failed: WebSearchOutcome["failed"] = [];
  const blocked = new Set<number>();
  // The guard's URL check first, for every result: a literal private address is refused without a request.
  offered.forEach((result, index) => {
    const reason = deps.fetcher.check(result.url);
    if (reason === null) return;
    blocked.add(index);
    refused.push({ url: result.url, reason });
    deps.logger.warn({ url: result.url.slice(0, 2000), reason }, "web search: refused to read a result page");
  });

  const read = new Map<number, FetchedPage>();
  const candidates = offered.map((_, index) => index).filter((index) => !blocked.has(index));
  let next = 0;
  // Pages being fetched count towards pagesToRead: a worker whose page arrived must not start
  // another while the rest are still on their way (each extra request is a burden on a site); a
  // worker whose page failed goes on and reads the next result in its place.
  let inFlight = 0;
  const worker = async (): Promise<void> => {
    while (read.size + inFlight < deps.config.pagesToRead && next < candidates.length && !within.aborted) {
      const index = candidates[next++]!;
      const url = offered[index]!.url;
      let outcome;
      inFlight++;
      try {
        outcome = await deps.fetcher.fetch(url, { signal: within });
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        failed.push({ url, reason: `not read within the search's ${deps.config.searchTimeoutMs} ms` });
        return; // the deadline: stop reading, answer with what is there
      } finally {
        inFlight--;
      }
      if (outcome.ok) {
        const title = outcome.page.title || offered[index]!.title || new URL(outcome.page.finalUrl).hostname;
        read.set(index, { ...outcome.page, title });
      } else {
        (outcome.refused ? refused : failed).push({ url, reason: outcome.reason });
        if (outcome.blocked) blocked.add(index);
      }
    }
  };
  const workers = Math.min(deps.config.pagesToRead, candidates.length);
  await Promise.all(Array.from({ length: workers }, worker));
  if (signal?.aborted) throw signal.reason;

  return {
    results: offered.filter((_, index) => !blocked.has(index)),
    pages: [...read.entries()].sort(([a], [b]) => a - b).map(([, page]) => page).slice(0, deps.config.pagesToRead),
    refused,
    failed,
  };
}

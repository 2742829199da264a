/**
 * Providers by name, built from the `webSearch` config. Adding one: a class implementing
 * WebSearchProvider (types.ts) that calls its API through providerGetJson, plus a line here and
 * its name in config.ts's `provider` enum.
 */
import type { WebSearchConfig } from "../config.ts";
import { BRAVE_ENDPOINT, BraveProvider } from "./brave.ts";
import { SearxngProvider } from "./searxng.ts";
import type { WebSearchProvider } from "./types.ts";

type ProviderName = WebSearchConfig["provider"];

const factories: Record<ProviderName, (config: WebSearchConfig) => WebSearchProvider> = {
  searxng: (config) => new SearxngProvider({ ...endpoint(config), url: required(config.url, "url") }),
  brave: (config) => new BraveProvider({ ...endpoint(config), url: config.url ?? BRAVE_ENDPOINT, apiKey: required(config.apiKey, "apiKey") }),
};

export const PROVIDER_NAMES = Object.keys(factories) as ProviderName[];

export function createWebSearchProvider(config: WebSearchConfig): WebSearchProvider {
  return factories[config.provider](config);
}

function endpoint(config: WebSearchConfig) {
  return { allowPrivateNetwork: config.allowPrivateNetwork, allowHttp: config.allowHttp, timeoutMs: config.fetchTimeoutMs };
}

/** The schema already demands these per provider; this keeps a hand-built config honest too. */
function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new Error(`webSearch.${key} is required for this provider`);
  return value;
}

export type { WebResult, WebSearchProvider } from "./types.ts";

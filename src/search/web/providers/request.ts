/**
 * The one way a provider calls its API: through the egress guard (src/models/http.ts), with the
 * operator's choices for the provider URL — plain http and a private address for that origin
 * only — a time limit and a bounded body. Failures become ServiceErrors the callers can show.
 */
import { ServiceError } from "../../../errors.ts";
import { ModelError } from "../../../models/errors.ts";
import { getJson } from "../../../models/http.ts";
import type { NetworkPolicy } from "../../../models/netguard.ts";

/** A search API answer is small; anything bigger is not what we asked for. */
const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

export interface ProviderEndpoint {
  /** The operator-configured URL the provider talks to. */
  url: string;
  allowPrivateNetwork: boolean;
  allowHttp: boolean;
  timeoutMs: number;
}

export function providerPolicy(endpoint: ProviderEndpoint): NetworkPolicy {
  return {
    allowPrivateNetwork: false,
    allowHttp: endpoint.allowHttp,
    privateOrigins: endpoint.allowPrivateNetwork ? [new URL(endpoint.url).origin] : [],
  };
}

export async function providerGetJson(
  provider: string,
  endpoint: ProviderEndpoint,
  url: URL,
  options: { /** Credentials: sent to the configured origin only, never to a redirect elsewhere. */ secretHeaders?: Record<string, string>; signal?: AbortSignal },
): Promise<unknown> {
  const timeout = AbortSignal.timeout(endpoint.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    const originHeaders = options.secretHeaders ? { origin: new URL(endpoint.url).origin, headers: options.secretHeaders } : undefined;
    return await getJson(url, { policy: providerPolicy(endpoint), originHeaders, signal }, MAX_RESPONSE_BYTES);
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason ?? error; // the caller gave up: not the provider's fault
    if (timeout.aborted) {
      throw new ServiceError("upstream", `The web search provider (${provider}) did not answer within ${endpoint.timeoutMs} ms.`, {
        code: "search_provider_timeout",
        cause: error,
      });
    }
    const detail =
      error instanceof ModelError
        ? error.message
            .replace(/Allow it explicitly \(--allow-private-network\)/, "Set webSearch.allowPrivateNetwork")
            .replace(/\(--allow-http\)/, "(webSearch.allowHttp)")
        : "the request failed";
    throw new ServiceError("upstream", `The web search provider (${provider}) failed: ${detail}`, {
      code: "search_provider_error",
      cause: error,
    });
  }
}

/** Snippets arrive with markup (<strong> around matches) and entities; the prompt wants text. */
export function plainText(value: unknown, maxChars = 2000): string {
  if (typeof value !== "string") return "";
  const text = value
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|nbsp|#39);/gi, (_, entity: string) => decodeEntity(entity))
    .replace(/\s+/g, " ")
    .trim();
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

function decodeEntity(entity: string): string {
  const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };
  const lower = entity.toLowerCase();
  if (lower in named) return named[lower]!;
  const code = lower.startsWith("#x") ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1), 10);
  return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : "";
}

/** Result URLs become links in the UI and fetch targets: only http(s) ones are kept. */
export function webUrl(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 4096) return null;
  try {
    const url = new URL(value);
    // The provider's spelling is kept (logs and `refused` show what was offered); fetches parse it again.
    return url.protocol === "http:" || url.protocol === "https:" ? value.trim() : null;
  } catch {
    return null;
  }
}

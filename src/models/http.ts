/**
 * GET over node:http/https with the download policy applied to every hop: protocol and
 * address checks (netguard.ts), a bounded number of redirects, and credentials that never
 * follow a redirect to another origin (Hugging Face redirects file downloads to a CDN).
 *
 * node:http rather than `fetch`: the built-in fetch has no hook to check the addresses a
 * connection actually uses, and it would transparently decompress or follow redirects.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import https from "node:https";
import { ModelError } from "./errors.ts";
import { assertUrlAllowed, guardedLookup, policyForUrl, redact, type NetworkPolicy } from "./netguard.ts";

export const MAX_REDIRECTS = 5;
const USER_AGENT = "sputnik-model-pull/0.1";

export interface GetOptions {
  policy: NetworkPolicy;
  headers?: Record<string, string>;
  /** Sent only to this origin (e.g. the Hugging Face endpoint), never to redirect targets elsewhere. */
  bearer?: { origin: string; token: string };
  /** Like `bearer` for other credential headers (an API key header): sent only to this origin. */
  originHeaders?: { origin: string; headers: Record<string, string> };
  signal?: AbortSignal;
}

export interface GetResult {
  response: IncomingMessage;
  /** The URL that produced `response`, after redirects. */
  url: URL;
}

/** Returns the first non-redirect response; the caller reads or discards its body. */
export async function guardedGet(url: string | URL, options: GetOptions): Promise<GetResult> {
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    assertUrlAllowed(current, options.policy);
    const response = await send(current, options);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(status) || location === undefined) {
      return { response, url: current };
    }
    response.resume(); // drain the redirect body so the socket is released
    if (hop >= MAX_REDIRECTS) {
      throw new ModelError("too_many_redirects", `Too many redirects (more than ${MAX_REDIRECTS}) from ${redact(new URL(url))}.`);
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new ModelError("http_error", `Invalid redirect location from ${redact(current)}.`);
    }
    if (current.protocol === "https:" && next.protocol === "http:") {
      // Refused even when http is allowed: allowing http is for sources given as http, not for downgrades.
      throw new ModelError("insecure_protocol", `Refusing redirect from https to plain http (${redact(next)}).`);
    }
    current = next;
  }
}

/** GET and parse a JSON body of at most `maxBytes`. Non-2xx answers become `http_error`. */
export async function getJson(url: string | URL, options: GetOptions, maxBytes = 32 * 1024 * 1024): Promise<unknown> {
  const { response, url: finalUrl } = await guardedGet(url, {
    ...options,
    headers: { accept: "application/json", ...options.headers },
  });
  const status = response.statusCode ?? 0;
  if (status < 200 || status > 299) {
    response.resume();
    throw httpError(status, finalUrl);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      response.destroy();
      throw new ModelError("http_error", `Response from ${redact(finalUrl)} is larger than ${maxBytes} bytes.`);
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ModelError("http_error", `Response from ${redact(finalUrl)} is not valid JSON.`);
  }
}

export function httpError(status: number, url: URL): ModelError {
  const hint =
    status === 401 || status === 403
      ? " (a gated or private repository needs HF_TOKEN)"
      : status === 404
        ? " (not found)"
        : status === 429
          ? " (rate limited; try again later)"
          : "";
  return new ModelError("http_error", `HTTP ${status} from ${redact(url)}${hint}.`);
}

function send(url: URL, options: GetOptions): Promise<IncomingMessage> {
  const headers: OutgoingHttpHeaders = {
    "user-agent": USER_AGENT,
    "accept-encoding": "identity", // byte offsets must be offsets into the file itself
    ...options.headers,
  };
  if (options.bearer && url.origin === options.bearer.origin) {
    headers.authorization = `Bearer ${options.bearer.token}`;
  }
  if (options.originHeaders && url.origin === options.originHeaders.origin) {
    Object.assign(headers, options.originHeaders.headers);
  }
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolvePromise, reject) => {
    const request = client.request(url, {
      method: "GET",
      headers,
      agent: false, // one connection per hop: every connection goes through guardedLookup
      lookup: guardedLookup(policyForUrl(url, options.policy)), // per hop: a listed origin does not extend to its redirects
      signal: options.signal,
    });
    request.on("response", resolvePromise);
    request.on("error", (error) => reject(asModelError(error, url)));
    request.end();
  });
}

function asModelError(error: Error, url: URL): Error {
  if (error instanceof ModelError || error.name === "AbortError") return error;
  return new ModelError("network_error", `Request to ${redact(url)} failed: ${error.message}`, { cause: error });
}

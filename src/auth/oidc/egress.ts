/**
 * The fetch openid-client uses to reach an identity provider (discovery, JWKS, token and userinfo
 * endpoints), with the project's egress guard (src/models/netguard.ts) on every connection.
 *
 * The issuer is chosen by the operator, so its own host may be loopback or private (an IdP in the
 * same cluster, a test IdP). Every other URL comes from the provider's discovery document, i.e.
 * from the provider rather than the operator: those follow `allowPrivateNetwork`, so a
 * compromised or misconfigured provider cannot make Sputnik post tokens to internal services.
 * Addresses are checked in the socket's own DNS lookup (guardedLookup), as for model pulls.
 *
 * node:http rather than the global fetch: fetch has no hook to check the address a connection
 * really uses. Redirects are never followed (openid-client asks for `redirect: "manual"`).
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { CustomFetch } from "openid-client";
import { assertUrlAllowed, guardedLookup } from "../../models/netguard.ts";

/** Discovery documents, key sets and token answers are small; a provider sending more is broken. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const USER_AGENT = "sputnik-oidc/0.1";

export function guardedOidcFetch(issuer: URL, options: { allowPrivateNetwork: boolean }): CustomFetch {
  return async (url, init) => {
    const target = new URL(url);
    const issuerHost = target.host === issuer.host;
    const policy = {
      allowPrivateNetwork: options.allowPrivateNetwork || issuerHost,
      // A loopback http issuer (config allows no other) may serve its endpoints over http; no other host may.
      allowHttp: issuerHost && issuer.protocol === "http:",
    };
    assertUrlAllowed(target, policy);
    const body = await requestBody(init.body);
    const response = await send(target, init.method, init.headers, body, policy, init.signal);
    return toFetchResponse(response, init.signal);
  };
}

async function requestBody(body: unknown): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), "utf8");
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ReadableStream) return Buffer.from(await new Response(body).arrayBuffer());
  throw new TypeError("Unsupported request body for the identity provider.");
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  policy: { allowPrivateNetwork: boolean; allowHttp: boolean },
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, {
      method,
      headers: { "user-agent": USER_AGENT, ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
      // One connection per request: each goes through guardedLookup.
      agent: false,
      lookup: guardedLookup(policy),
      signal,
    });
    request.on("response", resolve);
    request.on("error", reject);
    request.end(body);
  });
}

async function toFetchResponse(response: IncomingMessage, signal: AbortSignal | undefined): Promise<Response> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      response.destroy();
      throw new Error(`The identity provider's answer is larger than ${MAX_RESPONSE_BYTES} bytes.`);
    }
    chunks.push(chunk);
  }
  signal?.throwIfAborted();
  const headers = new Headers();
  for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) headers.append(response.rawHeaders[i], response.rawHeaders[i + 1]);
  const status = response.statusCode ?? 502;
  const noBody = status === 204 || status === 205 || status === 304;
  return new Response(noBody ? null : Buffer.concat(chunks), { status, statusText: response.statusMessage ?? "", headers });
}

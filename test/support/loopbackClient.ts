/**
 * A raw HTTP client for tests that need what fetch hides: the source address (each of 127.0.0.0/8
 * is a distinct client IP to the server, so distinct users without accounts), SSE comments, and
 * the exact moment a response or a data event arrives.
 *
 *   const call = await openCompletion(service.url, { model: "scripted", messages, stream: true }, { from: "127.0.0.2" });
 *   await call.until(() => call.comments.length > 0);
 *   call.abort();
 *
 * Calls to a service started by `startTestService` send its local single-user key
 * (src/auth/localMode.ts) unless they bring their own `authorization` header, as a local client
 * such as `sputnik chat` does: tests of limits and queues speak as the local operator.
 */
import http, { type IncomingHttpHeaders } from "node:http";

export interface OpenCall {
  status: number;
  headers: IncomingHttpHeaders;
  /** SSE comment lines without the leading ": ". */
  comments: string[];
  /** SSE data payloads (JSON text or "[DONE]"). */
  data: string[];
  /** The whole body as text (for JSON answers). */
  text: string;
  /** performance.now() at the first SSE data event; null until then. */
  firstDataAt: number | null;
  ended: boolean;
  /** Resolves when the response ends (or the connection closes). */
  finished: Promise<void>;
  /** Resolves as soon as `predicate` holds, checked on every received chunk; rejects if the response ends first. */
  until(predicate: () => boolean): Promise<void>;
  /** Closes the connection, as a client that leaves. */
  abort(): void;
}

export interface CallOptions {
  /** Source address: any of 127.0.0.0/8 on Linux. */
  from?: string;
  headers?: Record<string, string>;
  path?: string;
  /** POST (the default) sends `body` as JSON; GET sends nothing. */
  method?: "GET" | "POST";
}

// Service origin → its local key, registered by startTestService for the service's lifetime.
const localKeys = new Map<string, string>();

/** Makes calls to `baseUrl` carry `key` (null forgets it). */
export function useLocalKey(baseUrl: string, key: string | null): void {
  const origin = new URL(baseUrl).origin;
  if (key === null) localKeys.delete(origin);
  else localKeys.set(origin, key);
}

function localAuthFor(url: URL, headers: Record<string, string> | undefined): Record<string, string> {
  if (headers && Object.keys(headers).some((name) => name.toLowerCase() === "authorization")) return {};
  const key = localKeys.get(url.origin);
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** Sends the request; resolves once the response headers arrived. */
export function openCompletion(baseUrl: string, body: unknown, options: CallOptions = {}): Promise<OpenCall> {
  return sendCompletion(baseUrl, body, options).response;
}

/**
 * Sends the request and returns at once, for requests whose headers come late (a non-streamed
 * request waiting in the queue): `abort` closes the connection, `response` resolves with the call.
 */
export function sendCompletion(baseUrl: string, body: unknown, options: CallOptions = {}): { response: Promise<OpenCall>; abort(): void } {
  const url = new URL(options.path ?? "/v1/chat/completions", baseUrl);
  const method = options.method ?? "POST";
  const payload = method === "POST" ? JSON.stringify(body) : "";
  let abort = () => undefined as void;
  const response = new Promise<OpenCall>((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method,
        agent: false,
        ...(options.from ? { localAddress: options.from } : {}),
        headers: {
          ...(method === "POST" ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
          ...localAuthFor(url, options.headers),
          ...options.headers,
        },
      },
      (response) => {
        const waiters: Array<{ predicate: () => boolean; resolve: () => void; reject: (e: Error) => void }> = [];
        let buffer = "";
        const call: OpenCall = {
          status: response.statusCode ?? 0,
          headers: response.headers,
          comments: [],
          data: [],
          text: "",
          firstDataAt: null,
          ended: false,
          finished: new Promise((done) => response.once("close", () => done())),
          until: (predicate) =>
            predicate()
              ? Promise.resolve()
              : call.ended
                ? Promise.reject(new Error("the response ended before the condition held"))
                : new Promise((res, rej) => waiters.push({ predicate, resolve: res, reject: rej })),
          abort: () => request.destroy(),
        };
        const check = () => {
          for (const waiter of [...waiters]) {
            if (waiter.predicate()) {
              waiters.splice(waiters.indexOf(waiter), 1);
              waiter.resolve();
            } else if (call.ended) {
              waiters.splice(waiters.indexOf(waiter), 1);
              waiter.reject(new Error("the response ended before the condition held"));
            }
          }
        };
        // A client that aborts sees its own connection reset: that is the point, not a failure.
        response.on("error", () => undefined);
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          call.text += chunk;
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of block.split("\n")) {
              if (line.startsWith(": ")) call.comments.push(line.slice(2));
              else if (line.startsWith("data: ")) {
                call.firstDataAt ??= performance.now();
                call.data.push(line.slice(6));
              }
            }
          }
          check();
        });
        response.once("close", () => {
          call.ended = true;
          check();
        });
        resolve(call);
      },
    );
    abort = () => request.destroy();
    request.on("error", reject);
    request.end(payload);
  });
  // Aborting before the headers came rejects `response`; a caller that aborts does not await it.
  response.catch(() => undefined);
  return { response, abort: () => abort() };
}

import http from "node:http";
import type { AddressInfo } from "node:net";
import { ServiceError } from "../errors.ts";
import { anthropicErrorBody } from "./anthropic/errors.ts";
import { errorBody, toApiError } from "./errors.ts";

/** Seconds a client should wait before retrying while the service starts. */
export const STARTING_RETRY_AFTER_S = 5;

export interface StartupListener {
  /** The port it holds (the one asked for, or the one the OS chose for port 0). */
  readonly port: number;
  /** Frees the port (ending its connections) for the real server to listen on. */
  close(): Promise<void>;
}

/**
 * Holds the service's port while its models load (seconds for a small GGUF, minutes for a large
 * one): `/livez` and `/health/live` answer 200 and `/readyz` 503 `starting`, as Kubernetes expects of
 * a live process that is not ready, and every other request gets a 503 with Retry-After in its
 * API's error shape — never a refused connection that an orchestrator or a client would read as
 * "dead". A bare node:http server on purpose: nothing of the real server exists yet, and nothing
 * here reads a body or does work that grows with input.
 */
export async function listenWhileStarting(host: string, port: number): Promise<StartupListener> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0]!;
    // Whatever the client sends is not read: the connection closes with the answer.
    response.setHeader("connection", "close");
    if (request.method === "GET" && (path === "/livez" || path === "/health/live")) return send(response, 200, { status: "ok" });
    if (request.method === "GET" && path === "/readyz") return send(response, 503, { status: "starting" });
    response.setHeader("retry-after", String(STARTING_RETRY_AFTER_S));
    const error = toApiError(new ServiceError("unavailable", "Sputnik is starting: its models are loading. Please retry shortly.", { code: "starting" }));
    send(response, 503, path.startsWith("/anthropic/") ? anthropicErrorBody(error) : errorBody(error));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}

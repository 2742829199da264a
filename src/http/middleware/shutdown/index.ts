import type { FastifyInstance } from "fastify";
import { ServiceError } from "../../../errors.ts";
import type { Lifecycle } from "../../../serving/lifecycle.ts";

/** Seconds a client should wait before retrying a request refused during shutdown. */
export const RETRY_AFTER_S = 5;

/**
 * Probes and scrapes keep answering while the server drains: `/livez` must stay true or the
 * orchestrator kills the process before its answers finish, `/readyz` says itself that it is not
 * ready, and `/metrics` shows the drain. Exact paths: the gate refuses anything else.
 */
const ANSWERED_WHILE_DRAINING = new Set(["/livez", "/readyz", "/health/live", "/metrics"]);

/**
 * From the start of the drain (`lifecycle.beginDrain()`, on SIGTERM) — or, without a lifecycle,
 * from the moment the server starts closing — every new request (on a new connection, or one
 * kept alive) is refused with a 503 `shutting_down` and a Retry-After, in the API's own error
 * shape (each scope's error handler renders it: OpenAI's on /v1 and /api, Anthropic's on
 * /anthropic), while the requests already running finish. Build the server with
 * `return503OnClosing: false` so the refusal is this one and not Fastify's default body.
 */
export function registerShutdownGate(app: FastifyInstance, options: { lifecycle?: Lifecycle } = {}): void {
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    options.lifecycle?.beginDrain();
  });
  app.addHook("onRequest", async (request, reply) => {
    if (!closing && options.lifecycle?.draining !== true) return;
    if (ANSWERED_WHILE_DRAINING.has(request.url.split("?")[0]!)) return;
    // And the connection ends with the answer: a kept-alive socket would hold the close up.
    reply.header("connection", "close");
    throw new ServiceError("unavailable", "The server is restarting. Please retry shortly.", { code: "shutting_down", retryAfterS: RETRY_AFTER_S });
  });
}

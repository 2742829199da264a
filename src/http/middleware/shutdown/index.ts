import type { FastifyInstance } from "fastify";
import { ServiceError } from "../../../errors.ts";

/** Seconds a client should wait before retrying a request refused during shutdown. */
const RETRY_AFTER_S = 5;

/**
 * Once the server starts closing, every new request (one arriving on a kept-alive connection, say)
 * is refused with a 503 in the API's own error shape and a Retry-After — not Fastify's default
 * body — while the requests already running finish. Build the server with
 * `return503OnClosing: false` so the refusal is this one.
 */
export function registerShutdownGate(app: FastifyInstance): void {
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async (_request, reply) => {
    if (closing) {
      // And the connection ends with the answer: a kept-alive socket would hold the close up.
      reply.header("connection", "close");
      throw new ServiceError("unavailable", "The server is restarting. Please retry shortly.", { code: "shutting_down", retryAfterS: RETRY_AFTER_S });
    }
  });
}

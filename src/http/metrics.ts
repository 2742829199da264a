import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { isLoopbackAddress } from "../auth/localMode.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { ApiError } from "./errors.ts";
import "./middleware/types.ts";

/**
 * GET /metrics in Prometheus' text format (the registry lives in src/metrics), and the per-route
 * request counter.
 *
 * With a token configured, scrapers must send `Authorization: Bearer <token>`. Without one, only
 * clients on this machine are served, and only when the request did not come through a proxy
 * (a reverse proxy on the same host would otherwise make every visitor look local).
 */
export function registerMetrics(app: FastifyInstance, deps: { metrics: Metrics; token?: string | undefined }): void {
  const { metrics } = deps;
  app.addHook("onRequest", async (request, reply) => {
    // Counted when the raw response ends, so hijacked (SSE) replies are counted too.
    let finished = false;
    reply.raw.once("finish", () => (finished = true));
    reply.raw.once("close", () => {
      const status = finished ? reply.raw.statusCode : 499;
      metrics.httpRequests.inc({ route: request.routeOptions.url ?? "unmatched", method: request.method, status: String(status) });
    });
  });

  // Public to the auth middleware: this route checks its own token (or loopback) below.
  app.get("/metrics", { config: { access: "public" } }, async (request, reply) => {
    authorize(request, deps.token);
    const body = await metrics.registry.metrics();
    return reply.header("content-type", metrics.registry.contentType).header("cache-control", "no-store").send(body);
  });
}

function authorize(request: FastifyRequest, token: string | undefined): void {
  if (token !== undefined) {
    const sent = /^Bearer (.+)$/i.exec(request.headers.authorization ?? "")?.[1] ?? "";
    if (!sameSecret(sent, token)) {
      throw new ApiError(401, "GET /metrics needs 'Authorization: Bearer <metricsToken>'.", "invalid_metrics_token", null, {
        "www-authenticate": 'Bearer realm="metrics"',
      });
    }
    return;
  }
  const proxied = request.headers["x-forwarded-for"] !== undefined || request.headers.forwarded !== undefined;
  if (!isLoopbackAddress(request.socket.remoteAddress) || proxied) {
    throw new ApiError(403, "GET /metrics is served to loopback clients only; set metricsToken to scrape it from elsewhere.", "metrics_forbidden");
  }
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

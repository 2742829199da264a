import type { FastifyInstance } from "fastify";
import type { Limits } from "../../../limits/limits.ts";
import "../types.ts";

/**
 * The per-IP flood guard (`limits.httpPerIpPerMinute`) on every request, and the sign-in bucket
 * (`limits.authPerIpPerMinute`) on routes marked `config: { ipRateLimit: "auth" }`. Register it
 * before the auth middleware, so a flood is refused before any credential is looked up in the
 * database. A refusal is the limits' ServiceError (rate_limited), rendered 429 with Retry-After.
 */
export function registerFloodGuard(app: FastifyInstance, limits: Limits): void {
  app.addHook("onRequest", async (request, reply) => {
    // Routes with tighter buckets of their own (sign-in, completions) replace these headers.
    reply.headers((await limits.consumeIp("http-ip", request.ip)).headers);
    if (request.routeOptions.config.ipRateLimit === "auth") reply.headers((await limits.consumeIp("auth-ip", request.ip)).headers);
  });
}

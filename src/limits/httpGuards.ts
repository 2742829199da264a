import type { FastifyInstance } from "fastify";
import type { Actor } from "../auth/actor.ts";
import { ApiError } from "../http/errors.ts";
import type { Limits } from "./limits.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Still reachable without signing in while attack mode is on (the sign-in route). */
    openInAttackMode?: boolean;
    /**
     * "auth": the route is a sign-in, sign-up or code-redemption attempt, also counted against
     * `limits.authPerIpPerMinute` for the client IP.
     */
    ipRateLimit?: "auth";
  }
}

/**
 * The per-IP flood guard (`limits.httpPerIpPerMinute`) on every request, and the sign-in bucket
 * (`limits.authPerIpPerMinute`) on routes marked `config: { ipRateLimit: "auth" }`. Register it
 * before the auth hook, so a flood is refused before any credential is looked up in the database.
 */
export function registerFloodGuard(app: FastifyInstance, limits: Limits): void {
  app.addHook("onRequest", async (request, reply) => {
    // Routes with tighter buckets of their own (sign-in, completions) replace these headers.
    reply.headers((await limits.consumeIp("http-ip", request.ip)).headers);
    if (request.routeOptions.config.ipRateLimit === "auth") reply.headers((await limits.consumeIp("auth-ip", request.ip)).headers);
  });
}

/**
 * While attack mode is on, the API (`/v1/*`, `/api/*`) answers signed-in users only, except routes
 * marked `config: { openInAttackMode: true }` (signing in). Static files, /health and /metrics stay
 * as they are, so the sign-in page loads and monitoring keeps working.
 */
export function registerAttackModeGate(app: FastifyInstance, limits: Limits): void {
  // preParsing runs after every onRequest hook, so the auth hook has set the actor whatever the
  // registration order, and a refused request's body is never parsed.
  app.addHook("preParsing", async (request) => {
    const route = request.routeOptions.url;
    if (route === undefined || !(route.startsWith("/v1/") || route.startsWith("/api/"))) return;
    if (request.routeOptions.config.openInAttackMode === true) return;
    const actor = request.actor as Actor | undefined | null;
    if (actor?.kind === "user") return;
    if (!(await limits.isAttackMode())) return;
    limits.noteRejection("attack_mode_auth");
    throw new ApiError(
      401,
      "The service is in attack mode: only signed-in users and API keys are served. Please sign in.",
      "attack_mode_auth_required",
    );
  });
}

import type { Actor } from "../../auth/actor.ts";

/**
 * Who may reach a route, declared in its options: `app.get(url, { config: { access: "public" } }, …)`.
 * - `public`: anyone (sign-in pages, /health, static files);
 * - `user`: a signed-in account — the default for every route that doesn't say otherwise;
 * - `user-or-local`: a signed-in account, or the loopback single-user actor — the default for /v1.
 * Deny by default: a new route is closed until it says it is public. The decision uses the route the
 * router matched (its pattern), never the raw URL, so no spelling of a path (case, duplicate
 * slashes, %2f, dots, query strings) can reach a route under another route's rules.
 */
export type RouteAccess = "public" | "user" | "user-or-local";

/** What the middleware adds to Fastify's types: route options they read, and `request.actor`. */
declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may reach the route (middleware/auth). */
    access?: RouteAccess;
    /** Still reachable without signing in while attack mode is on: the sign-in route (middleware/attackModeGate). */
    openInAttackMode?: boolean;
    /**
     * "auth": the route is a sign-in, sign-up or code-redemption attempt, also counted against
     * `limits.authPerIpPerMinute` for the client IP (middleware/floodGuard).
     */
    ipRateLimit?: "auth";
  }

  interface FastifyRequest {
    /** Set for every request by the auth middleware (middleware/auth); anonymous until proven otherwise. */
    actor: Actor;
  }
}

import type { FastifyInstance } from "fastify";
import type { Actor } from "../../../auth/actor.ts";
import { ServiceError } from "../../../errors.ts";
import type { Limits } from "../../../limits/limits.ts";
import "../types.ts";

/**
 * While attack mode is on, the API (`/v1/*`, `/anthropic/*`, `/api/*`) answers signed-in users only, except routes
 * marked `config: { openInAttackMode: true }` (signing in). Static files, /health and /metrics stay
 * as they are, so the sign-in page loads and monitoring keeps working.
 */
export function registerAttackModeGate(app: FastifyInstance, limits: Limits): void {
  // preParsing runs after every onRequest hook, so the auth middleware has set the actor whatever
  // the registration order, and a refused request's body is never parsed.
  app.addHook("preParsing", async (request) => {
    const route = request.routeOptions.url;
    if (route === undefined || !(route.startsWith("/v1/") || route.startsWith("/api/") || route.startsWith("/anthropic/"))) return;
    if (request.routeOptions.config.openInAttackMode === true) return;
    const actor = request.actor as Actor | undefined | null;
    if (actor?.kind === "user") return;
    if (!(await limits.isAttackMode())) return;
    limits.noteRejection("attack_mode_auth");
    throw new ServiceError("unauthenticated", "The service is in attack mode: only signed-in users and API keys are served. Please sign in.", {
      code: "attack_mode_auth_required",
    });
  });
}

import type { FastifyRequest } from "fastify";
import type { Actor } from "../auth/actor.ts";

/**
 * Whom a limit counts against: the account (and the API key it used, and its plan) for signed-in
 * requests, otherwise the client IP — for anonymous requests and the local single-user mode alike.
 */
export interface Identity {
  kind: Actor["kind"];
  userId: string | null;
  apiKeyId: string | null;
  planId: string | null;
  ip: string;
}

export function identityOf(request: FastifyRequest): Identity {
  // `actor` is set by the auth hook; a server built without it treats everyone as anonymous.
  const actor = (request.actor as Actor | undefined) ?? { kind: "anonymous" };
  const ip = request.ip ?? request.socket.remoteAddress ?? "unknown";
  if (actor.kind === "user") {
    return { kind: "user", userId: actor.userId, apiKeyId: actor.apiKeyId, planId: actor.planId, ip };
  }
  return { kind: actor.kind, userId: null, apiKeyId: null, planId: null, ip };
}

/** The fairness flow: one per user, else one per client IP. */
export function flowOf(identity: Identity): string {
  return identity.userId !== null ? `user:${identity.userId}` : `ip:${identity.ip}`;
}

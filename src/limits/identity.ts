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

/**
 * The identity of a request made by `actor` from `ip` (the client address as the transport sees
 * it, after any trusted proxy). No actor (a server built without auth) counts as anonymous.
 */
export function identityOf(actor: Actor | null | undefined, ip: string | null | undefined): Identity {
  const address = ip || "unknown";
  if (actor?.kind === "user") {
    return { kind: "user", userId: actor.userId, apiKeyId: actor.apiKeyId, planId: actor.planId, ip: address };
  }
  return { kind: actor?.kind ?? "anonymous", userId: null, apiKeyId: null, planId: null, ip: address };
}

/** The fairness flow: one per user, else one per client IP. */
export function flowOf(identity: Identity): string {
  return identity.userId !== null ? `user:${identity.userId}` : `ip:${identity.ip}`;
}

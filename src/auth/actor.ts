/**
 * Who is making a request. Every request carries exactly one actor, decided before any route runs
 * (over HTTP, `request.actor`, set by src/http/middleware/auth):
 *
 * - `user`: a signed-in account, through a session cookie (`sessionId` set) or an API key
 *   (`apiKeyId` set). `planId` is the billing plan the account is on.
 * - `local`: the loopback single-user mode — Sputnik listens on loopback only, no account exists
 *   yet, and the request comes straight from this machine. Only `/v1` routes see it.
 * - `anonymous`: nobody; public routes only.
 */
export type Actor = UserActor | LocalActor | AnonymousActor;

export type Role = "admin" | "user";

export interface UserActor {
  kind: "user";
  userId: string;
  role: Role;
  apiKeyId: string | null;
  sessionId: string | null;
  planId: string | null;
  /** Models the API key that authenticated may use; null or absent means every model. */
  modelScope?: string[] | null;
  /**
   * An admin account acting without admin rights until it enrols a second factor (the "require a
   * second factor for administrators" switch, src/auth/secondFactorSetting.ts): `role` is "user".
   */
  secondFactorRequired?: boolean;
}

export interface LocalActor {
  kind: "local";
}

export interface AnonymousActor {
  kind: "anonymous";
}

export const ANONYMOUS: AnonymousActor = Object.freeze({ kind: "anonymous" });
export const LOCAL: LocalActor = Object.freeze({ kind: "local" });

export function isUser(actor: Actor): actor is UserActor {
  return actor.kind === "user";
}

export function isAdmin(actor: Actor): actor is UserActor & { role: "admin" } {
  return actor.kind === "user" && actor.role === "admin";
}

/** True when `actor` is the signed-in owner `userId`. */
export function isOwner(actor: Actor, userId: string | null | undefined): boolean {
  return actor.kind === "user" && userId != null && actor.userId === userId;
}

import type { Kysely } from "kysely";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { UserActor } from "./actor.ts";
import { keyModels, looksLikeApiKey, resolveApiKey } from "./apiKeys.ts";
import { adminMustEnrol } from "./secondFactorSetting.ts";
import { resolveSession, type SessionLifetime } from "./sessions.ts";

/**
 * Who is calling, from the credentials a request brought, as plain values: a transport (the HTTP
 * auth middleware, src/http/middleware/auth) reads them from its headers and cookies and asks here.
 */

/** The token of an `Authorization: Bearer <token>` value; null when the value has another shape. */
export function bearerToken(authorization: string | undefined): string | null {
  if (authorization === undefined) return null;
  return /^Bearer ([^\s]+)$/i.exec(authorization)?.[1] ?? null;
}

/**
 * The account behind an API key, with the key's model scope. Throws ServiceError unauthenticated
 * (invalid_api_key) for anything that is not a live key; a token that cannot be a key is refused
 * without touching the database.
 */
export async function actorFromApiKey(db: Kysely<Database>, token: string | null): Promise<UserActor> {
  if (!token || !looksLikeApiKey(token)) throw invalidApiKey();
  const found = await resolveApiKey(db, token);
  if (!found) throw invalidApiKey();
  return {
    kind: "user",
    userId: found.user.id,
    role: found.user.role,
    apiKeyId: found.key.id,
    sessionId: null,
    planId: found.user.plan_id,
    modelScope: keyModels(found.key),
  };
}

/**
 * The account behind a session token (the session cookie's value); null when the session ended
 * (expired, revoked, or the account was disabled), so the caller can forget the dead cookie.
 * While admins must have a second factor and this admin has none, the session acts as an ordinary
 * user's (`secondFactorRequired`), so they can still reach their settings to enrol. A single sign-on
 * session is exempt: the OpenID provider authenticated the person, and MFA is its policy to enforce
 * (an SSO-only admin has no local password to enrol a TOTP with, and must not be locked out).
 */
export async function actorFromSession(db: Kysely<Database>, token: string, lifetime: SessionLifetime): Promise<UserActor | null> {
  const found = await resolveSession(db, token, lifetime);
  if (!found) return null;
  const mustEnrol = found.session.sign_in_method !== "sso" && (await adminMustEnrol(db, found.user));
  return {
    kind: "user",
    userId: found.user.id,
    role: mustEnrol ? "user" : found.user.role,
    ...(mustEnrol ? { secondFactorRequired: true } : {}),
    apiKeyId: null,
    sessionId: found.session.id,
    planId: found.user.plan_id,
  };
}

export function invalidApiKey(): ServiceError {
  return new ServiceError("unauthenticated", "Incorrect API key provided. Create a key in your account settings.", { code: "invalid_api_key" });
}

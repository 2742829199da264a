import type { Kysely } from "kysely";
import type { PasswordHasher } from "../auth/passwords.ts";
import { createSession, revokeSession, type SessionLifetime, type SessionRow } from "../auth/sessions.ts";
import { LOGIN_ACCOUNT_RULE, LOGIN_IP_RULE, Throttle } from "../auth/throttle.ts";
import { findUserByLogin, updateUser, type UserRow } from "../auth/users.ts";
import { ApiError } from "../http/errors.ts";
import type { Database } from "../store/schema.ts";
import { retryAfter } from "./errors.ts";

export interface LogInInput {
  /** User name or e-mail address. */
  login: string;
  password: string;
  ip: string | null;
  userAgent: string | null;
  /** The session this browser had, ended now: every sign-in gets a fresh session id. */
  previousSessionId: string | null;
}

export interface LogInDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  lifetime: SessionLifetime;
}

/**
 * Password sign-in. Wrong password and unknown account get the same answer after the same work
 * (an unknown account is checked against a dummy hash). Failures are throttled per login name and
 * per client address with growing delays; while throttled, even the right password is refused, so
 * the throttle cannot be used to test guesses.
 */
export async function logIn(deps: LogInDeps, input: LogInInput, now: number = Date.now()): Promise<{ user: UserRow; token: string; session: SessionRow }> {
  const { db, hasher } = deps;
  const accountKey = input.login.trim().toLowerCase();
  const ipKey = input.ip ?? "unknown";
  const byAccount = new Throttle(db, LOGIN_ACCOUNT_RULE, "login-account");
  const byIp = new Throttle(db, LOGIN_IP_RULE, "login-ip");
  const wait = Math.max(await byAccount.waitMs(accountKey, now), await byIp.waitMs(ipKey, now));
  if (wait > 0) throw retryAfter(wait, "Too many failed sign-in attempts. Try again later.", "too_many_login_attempts");

  const user = await findUserByLogin(db, input.login);
  const ok = await hasher.verifyOrDummy(user?.password_hash ?? null, input.password);
  if (!user || !ok) {
    await byAccount.recordFailure(accountKey, now);
    await byIp.recordFailure(ipKey, now);
    throw new ApiError(401, "Incorrect user name or password.", "invalid_credentials");
  }
  await byAccount.reset(accountKey);
  // Told only to whoever knows the password.
  if (user.status === "pending") throw new ApiError(403, "Your account is waiting for an administrator's approval.", "account_pending");
  if (user.status === "disabled") throw new ApiError(403, "Your account has been disabled.", "account_disabled");

  if (input.previousSessionId) await revokeSession(db, input.previousSessionId, now);
  const { token, session } = await createSession(db, { userId: user.id, userAgent: input.userAgent, ip: input.ip, lifetime: deps.lifetime }, now);
  // Keep stored hashes at today's cost: rehash while the password is at hand.
  const rehash = hasher.needsRehash(user.password_hash) ? { password_hash: await hasher.hash(input.password) } : {};
  await updateUser(db, user.id, { last_login_at: now, ...rehash }, now);
  return { user: { ...user, last_login_at: now }, token, session };
}

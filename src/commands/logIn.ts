import type { Kysely } from "kysely";
import type { PasswordHasher } from "../auth/passwords.ts";
import { createSession, revokeSession, type SessionLifetime, type SessionRow } from "../auth/sessions.ts";
import { LoginThrottle } from "../auth/loginThrottle.ts";
import type { RememberedDevices } from "../auth/rememberedDevices.ts";
import { findUserByLogin, updateUser, type UserRow } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
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
  /** The remembered-device cookie this browser sent (src/auth/rememberedDevices.ts), if any. */
  deviceCookie?: string | null;
}

export interface LogInDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  lifetime: SessionLifetime;
  /** Checks remembered-device cookies; without it every device is a new one. */
  devices?: RememberedDevices;
}

/**
 * Password sign-in. Wrong password and unknown account get the same answer after the same work
 * (an unknown account is checked against a dummy hash). Failures are throttled per address, per
 * (account, address) and per account (src/auth/loginThrottle.ts); a device the account remembers
 * is exempt from the per-account counter, so nobody can lock the owner out. While throttled, even
 * the right password is refused, so the throttle cannot be used to test guesses.
 */
export async function logIn(deps: LogInDeps, input: LogInInput, now: number = Date.now()): Promise<{ user: UserRow; token: string; session: SessionRow }> {
  const { db, hasher } = deps;
  const throttle = new LoginThrottle(db);
  // Looked up before the throttle check: the throttle keys on the account, and a remembered device
  // is remembered for an account. Unknown names take the same path, with their own key.
  const user = await findUserByLogin(db, input.login);
  const { waitMs, attempt } = await throttle.check(
    {
      account: LoginThrottle.accountKey(user?.id ?? null, input.login),
      ip: input.ip ?? "unknown",
      device: user && deps.devices ? deps.devices.find(input.deviceCookie, user.id, now) : null,
    },
    now,
  );
  if (waitMs > 0) throw retryAfter(waitMs, "Too many failed sign-in attempts. Try again later.", "too_many_login_attempts");

  const ok = await hasher.verifyOrDummy(user?.password_hash ?? null, input.password);
  if (!user || !ok) {
    await throttle.failed(attempt, now);
    throw new ServiceError("unauthenticated", "Incorrect user name or password.", { code: "invalid_credentials" });
  }
  await throttle.succeeded(attempt);
  // Told only to whoever knows the password.
  if (user.status === "pending") throw new ServiceError("forbidden", "Your account is waiting for an administrator's approval.", { code: "account_pending" });
  if (user.status === "disabled") throw new ServiceError("forbidden", "Your account has been disabled.", { code: "account_disabled" });

  if (input.previousSessionId) await revokeSession(db, input.previousSessionId, now);
  const { token, session } = await createSession(db, { userId: user.id, userAgent: input.userAgent, ip: input.ip, lifetime: deps.lifetime }, now);
  // Keep stored hashes at today's cost: rehash while the password is at hand.
  const rehash = hasher.needsRehash(user.password_hash) ? { password_hash: await hasher.hash(input.password) } : {};
  await updateUser(db, user.id, { last_login_at: now, ...rehash }, now);
  return { user: { ...user, last_login_at: now }, token, session };
}

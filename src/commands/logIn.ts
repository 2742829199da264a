import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import { createPendingLogin, deletePendingLogin, findPendingLogin, recordPendingLoginFailure } from "../auth/pendingLogins.ts";
import { countUnusedRecoveryCodes, useRecoveryCode } from "../auth/recoveryCodes.ts";
import { createSession, revokeSession, type SessionLifetime, type SessionRow } from "../auth/sessions.ts";
import { LoginThrottle, SECOND_FACTOR_THROTTLE } from "../auth/loginThrottle.ts";
import type { RememberedDevices } from "../auth/rememberedDevices.ts";
import { totpSecretBox } from "../auth/secretBox.ts";
import { claimTotpStep, findTotp, hasSecondFactor, openTotpSecret, totpStepOf } from "../auth/totp.ts";
import { findUserById, findUserByLogin, updateUser, type UserRow } from "../auth/users.ts";
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
 * What a right password leads to: a session, or — for an account with a second factor — a pending
 * sign-in whose token the browser must bring back with a code (`completeSecondFactor`).
 */
export type LogInResult =
  | { kind: "signed_in"; user: UserRow; token: string; session: SessionRow }
  | { kind: "second_factor"; user: UserRow; pendingToken: string; expiresAt: number };

/**
 * Password sign-in. Wrong password and unknown account get the same answer after the same work
 * (an unknown account is checked against a dummy hash). Failures are throttled per address, per
 * (account, address) and per account (src/auth/loginThrottle.ts); a device the account remembers
 * is exempt from the per-account counter, so nobody can lock the owner out. While throttled, even
 * the right password is refused, so the throttle cannot be used to test guesses.
 *
 * An account with a confirmed second factor gets no session here: the password opens a pending
 * sign-in (src/auth/pendingLogins.ts), and only `completeSecondFactor` turns it into a session.
 * Whether an account has a second factor is told only to whoever knows its password.
 */
export async function logIn(deps: LogInDeps, input: LogInInput, now: number = Date.now()): Promise<LogInResult> {
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
  if (waitMs > 0) throw retryAfter(waitMs, "Too many failed sign-in attempts.", "too_many_login_attempts");

  const ok = await hasher.verifyOrDummy(user?.password_hash ?? null, input.password);
  if (!user || !ok) {
    await throttle.failed(attempt, now);
    throw new ServiceError("unauthenticated", "Incorrect user name or password.", { code: "invalid_credentials" });
  }
  await throttle.succeeded(attempt);
  // Told only to whoever knows the password.
  assertCanSignIn(user);

  // Keep stored hashes at today's cost: rehash while the password is at hand.
  const rehash = hasher.needsRehash(user.password_hash) ? { password_hash: await hasher.hash(input.password) } : {};
  if (await hasSecondFactor(db, user.id)) {
    if (rehash.password_hash) await updateUser(db, user.id, rehash, now);
    const { token, row } = await createPendingLogin(db, { userId: user.id, ip: input.ip }, now);
    return { kind: "second_factor", user, pendingToken: token, expiresAt: row.expires_at };
  }
  return db.transaction().execute(async (trx) => {
    const signedIn = await startSession(trx, deps.lifetime, user, input, now);
    if (rehash.password_hash) await updateUser(trx, user.id, rehash, now);
    return { kind: "signed_in" as const, ...signedIn };
  });
}

export interface SecondFactorInput {
  /** The pending sign-in's token (the httpOnly cookie set by the password step). */
  pendingToken: string | null;
  /** A six-digit code from the authenticator app… */
  code?: string | null;
  /** …or one of the account's recovery codes. */
  recoveryCode?: string | null;
  ip: string | null;
  userAgent: string | null;
  previousSessionId: string | null;
  deviceCookie?: string | null;
}

/**
 * The second step of a two-step sign-in: a TOTP code (never one already accepted: its time step is
 * claimed atomically) or an unused recovery code (used up in the same transaction that starts the
 * session, and audited). Wrong codes are throttled like passwords, with counters of their own
 * (SECOND_FACTOR_THROTTLE), and a pending sign-in allows only a few before the password is asked
 * again. The pending sign-in is deleted by the transaction that creates the session, so one
 * password step yields at most one session.
 */
export async function completeSecondFactor(
  deps: LogInDeps,
  input: SecondFactorInput,
  now: number = Date.now(),
): Promise<{ user: UserRow; token: string; session: SessionRow; usedRecoveryCode: boolean; recoveryCodesLeft: number | null }> {
  const { db } = deps;
  const pending = await findPendingLogin(db, input.pendingToken, now);
  if (!pending) throw loginExpired();
  const user = await findUserById(db, pending.user_id);
  if (!user) throw loginExpired();
  assertCanSignIn(user);

  const throttle = new LoginThrottle(db, SECOND_FACTOR_THROTTLE);
  const { waitMs, attempt } = await throttle.check(
    { account: LoginThrottle.accountKey(user.id, ""), ip: input.ip ?? "unknown", device: deps.devices ? deps.devices.find(input.deviceCookie, user.id, now) : null },
    now,
  );
  if (waitMs > 0) throw retryAfter(waitMs, "Too many wrong codes.", "too_many_second_factor_attempts");

  const fail = async (message: string, code: string, param: string) => {
    await throttle.failed(attempt, now);
    const left = await recordPendingLoginFailure(db, pending.id);
    if (left === 0) throw new ServiceError("unauthenticated", `${message} Too many wrong codes: sign in again with your password.`, { code: "login_expired" });
    return new ServiceError("unauthenticated", message, { code, param });
  };

  if (input.recoveryCode) {
    const result = await db.transaction().execute(async (trx) => {
      if (!(await useRecoveryCode(trx, user.id, input.recoveryCode!, now))) return null;
      if (!(await deletePendingLogin(trx, pending.id))) throw loginExpired();
      const left = await countUnusedRecoveryCodes(trx, user.id);
      await writeAudit(trx, { actorUserId: user.id, action: "second_factor.recovery_code_used", targetType: "user", targetId: user.id, details: { remaining: left }, ip: input.ip }, now);
      return { ...(await startSession(trx, deps.lifetime, user, input, now)), left };
    });
    if (!result) throw await fail("That recovery code is not valid or was already used.", "invalid_recovery_code", "recovery_code");
    await throttle.succeeded(attempt);
    return { user: result.user, token: result.token, session: result.session, usedRecoveryCode: true, recoveryCodesLeft: result.left };
  }

  const totp = await findTotp(db, user.id);
  if (!totp || totp.confirmed_at === null) throw loginExpired();
  const secret = openTotpSecret(await totpSecretBox(db), totp);
  const step = await totpStepOf(secret, input.code ?? "", null, now);
  if (step === null) throw await fail("Incorrect code.", "invalid_second_factor", "code");
  const signedIn = await db.transaction().execute(async (trx) => {
    // The step is claimed in the transaction that starts the session: a code accepted once is
    // never accepted again, also when two requests bring it at the same moment.
    if (!(await claimTotpStep(trx, user.id, step))) return null;
    if (!(await deletePendingLogin(trx, pending.id))) throw loginExpired();
    return startSession(trx, deps.lifetime, user, input, now);
  });
  if (!signedIn) throw await fail("This code was already used. Wait for the next one.", "code_already_used", "code");
  await throttle.succeeded(attempt);
  return { ...signedIn, usedRecoveryCode: false, recoveryCodesLeft: null };
}

function assertCanSignIn(user: UserRow): void {
  if (user.status === "pending") throw new ServiceError("forbidden", "Your account is waiting for an administrator's approval.", { code: "account_pending" });
  if (user.status === "disabled") throw new ServiceError("forbidden", "Your account has been disabled.", { code: "account_disabled" });
}

function loginExpired(): ServiceError {
  return new ServiceError("unauthenticated", "This sign-in has expired. Enter your password again.", { code: "login_expired" });
}

/** Ends the browser's previous session and starts a new one (every sign-in gets a fresh session id). */
async function startSession(
  db: Kysely<Database>,
  lifetime: SessionLifetime,
  user: UserRow,
  input: { ip: string | null; userAgent: string | null; previousSessionId: string | null },
  now: number,
): Promise<{ user: UserRow; token: string; session: SessionRow }> {
  if (input.previousSessionId) await revokeSession(db, input.previousSessionId, now);
  const { token, session } = await createSession(db, { userId: user.id, userAgent: input.userAgent, ip: input.ip, lifetime }, now);
  await updateUser(db, user.id, { last_login_at: now }, now);
  return { user: { ...user, last_login_at: now }, token, session };
}

import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import { clearLoginThrottle, LoginThrottle } from "../auth/loginThrottle.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import { claimPasswordReset, createPasswordReset, findUsablePasswordReset, voidPasswordResets, type PasswordResetRow } from "../auth/passwordResets.ts";
import { deleteUserPendingLogins } from "../auth/pendingLogins.ts";
import { findUserById, updateUser, type UserRow } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import { retryAfter } from "./errors.ts";
import type { AdminContext } from "./manageUsers.ts";

export interface PasswordDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
}

/**
 * Re-checks the signed-in user's password before a security change (new password, second factor
 * on or off, new recovery codes), so a session left open or stolen cannot make those changes.
 * Wrong passwords count against the same throttle as sign-in (src/auth/loginThrottle.ts), so this
 * is no side door for guessing. Refused as a bad parameter, not 401: the session itself is fine.
 */
export async function confirmCurrentPassword(
  deps: PasswordDeps,
  input: { userId: string; password: string; ip: string | null },
  now: number = Date.now(),
): Promise<UserRow> {
  const user = await findUserById(deps.db, input.userId);
  if (!user) throw new ServiceError("unauthenticated", "You are not signed in.", { code: "unauthenticated" });
  const throttle = new LoginThrottle(deps.db);
  const { waitMs, attempt } = await throttle.check({ account: LoginThrottle.accountKey(user.id, ""), ip: input.ip ?? "unknown", device: null }, now);
  if (waitMs > 0) throw retryAfter(waitMs, "Too many wrong passwords.", "too_many_login_attempts");
  if (!(await deps.hasher.verify(user.password_hash, input.password))) {
    await throttle.failed(attempt, now);
    throw new ServiceError("invalid_request", "Your current password is not correct.", { code: "invalid_current_password", param: "current_password" });
  }
  await throttle.succeeded(attempt);
  return user;
}

/**
 * Changes the signed-in user's password: needs the current one; every other session of the
 * account ends (a thief's included), this one stays. Unused reset links and half-done sign-ins of
 * the account stop working too. Audited as `user.password_change`.
 */
export async function changePassword(
  deps: PasswordDeps,
  input: { userId: string; sessionId: string | null; currentPassword: string; newPassword: string; ip: string | null },
  now: number = Date.now(),
): Promise<{ endedSessions: number }> {
  const user = await confirmCurrentPassword(deps, { userId: input.userId, password: input.currentPassword, ip: input.ip }, now);
  const passwordHash = await deps.hasher.hash(input.newPassword);
  return deps.db.transaction().execute(async (trx) => {
    await updateUser(trx, user.id, { password_hash: passwordHash }, now);
    let ended = trx.updateTable("sessions").set({ revoked_at: now }).where("user_id", "=", user.id).where("revoked_at", "is", null);
    if (input.sessionId) ended = ended.where("id", "!=", input.sessionId);
    const endedSessions = Number((await ended.executeTakeFirst()).numUpdatedRows);
    await voidPasswordResets(trx, user.id, now);
    await deleteUserPendingLogins(trx, user.id);
    await writeAudit(trx, { actorUserId: user.id, action: "user.password_change", targetType: "user", targetId: user.id, details: { ended_sessions: endedSessions }, ip: input.ip }, now);
    return { endedSessions };
  });
}

/**
 * An admin issues a one-time reset link for an account (shown once; no e-mail needed). A newer link
 * voids older unused ones. Audited as `user.password_reset_issue`. Disabled accounts get none:
 * they could not sign in with the new password anyway.
 */
export async function issuePasswordReset(
  db: Kysely<Database>,
  by: AdminContext | null,
  userId: string,
  now: number = Date.now(),
): Promise<{ token: string; row: PasswordResetRow; user: UserRow }> {
  return db.transaction().execute(async (trx) => {
    const user = await findUserById(trx, userId);
    if (!user) throw new ServiceError("not_found", "User not found", { code: "not_found" });
    if (user.status === "disabled") throw new ServiceError("conflict", "The account is disabled: enable it before issuing a reset link.", { code: "invalid_status" });
    const { token, row } = await createPasswordReset(trx, { userId: user.id, createdBy: by?.userId ?? null }, now);
    await writeAudit(
      trx,
      { actorUserId: by?.userId ?? null, action: "user.password_reset_issue", targetType: "user", targetId: user.id, details: { reset_id: row.id, expires_at: row.expires_at }, ip: by?.ip ?? null },
      now,
    );
    return { token, row, user };
  });
}

/**
 * Sets a new password with a reset link: the link is used up (it works once, until it expires),
 * every session of the account ends, and its sign-in throttling is cleared (the owner may have
 * tripped it while trying to remember). A second factor stays on: the link replaces the password,
 * not the code. Audited as `user.password_reset`.
 */
export async function resetPassword(deps: PasswordDeps, input: { token: string; newPassword: string; ip: string | null }, now: number = Date.now()): Promise<UserRow> {
  const invalid = () => new ServiceError("invalid_request", "This reset link is not valid: it expired, was already used, or a newer one was issued.", { code: "invalid_reset_token", param: "token" });
  const found = await findUsablePasswordReset(deps.db, input.token, now);
  if (!found) throw invalid();
  const passwordHash = await deps.hasher.hash(input.newPassword);
  return deps.db.transaction().execute(async (trx) => {
    if (!(await claimPasswordReset(trx, found.id, now))) throw invalid();
    const user = await findUserById(trx, found.user_id);
    if (!user || user.status === "disabled") throw invalid();
    await updateUser(trx, user.id, { password_hash: passwordHash }, now);
    const ended = await trx.updateTable("sessions").set({ revoked_at: now }).where("user_id", "=", user.id).where("revoked_at", "is", null).executeTakeFirst();
    await voidPasswordResets(trx, user.id, now);
    await deleteUserPendingLogins(trx, user.id);
    await clearLoginThrottle(trx, user.id);
    await writeAudit(
      trx,
      { actorUserId: user.id, action: "user.password_reset", targetType: "user", targetId: user.id, details: { reset_id: found.id, ended_sessions: Number(ended.numUpdatedRows) }, ip: input.ip },
      now,
    );
    return user;
  });
}

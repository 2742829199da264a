import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import { deleteUserPendingLogins } from "../auth/pendingLogins.ts";
import { countUnusedRecoveryCodes, deleteRecoveryCodes, replaceRecoveryCodes } from "../auth/recoveryCodes.ts";
import { totpSecretBox } from "../auth/secretBox.ts";
import { forgetAdminSecondFactorSetting, isAdminSecondFactorRequired, saveAdminSecondFactorRequired } from "../auth/secondFactorSetting.ts";
import { claimTotpStep, deleteTotp, findTotp, hasSecondFactor, newTotpSecret, openTotpSecret, saveUnconfirmedTotp, sealTotpSecret, totpStepOf, totpUri } from "../auth/totp.ts";
import { findUserByLogin, type UserRow } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { AdminContext } from "./manageUsers.ts";
import { confirmCurrentPassword, type PasswordDeps } from "./passwords.ts";
import type { SecondFactorStatus } from "../auth/totp.ts";

/** An enrolment must be confirmed this soon after it started, or started again (the secret shown does not linger). */
export const ENROLMENT_MS = 15 * 60_000;


export async function secondFactorStatus(db: Kysely<Database>, userId: string): Promise<SecondFactorStatus> {
  const totp = await findTotp(db, userId);
  const enabled = totp?.confirmed_at != null;
  return { enabled, confirmedAt: totp?.confirmed_at ?? null, recoveryCodesLeft: enabled ? await countUnusedRecoveryCodes(db, userId) : 0 };
}

/**
 * Starts TOTP enrolment (needs the current password): a fresh secret, stored sealed and not yet in
 * force; returned once so the app can show it as a QR code and as text. Starting again replaces an
 * unconfirmed secret; a confirmed second factor must be turned off first.
 */
export async function startTotpEnrolment(
  deps: PasswordDeps,
  input: { userId: string; currentPassword: string; ip: string | null },
  now: number = Date.now(),
): Promise<{ secret: string; uri: string; user: UserRow }> {
  const user = await confirmCurrentPassword(deps, { userId: input.userId, password: input.currentPassword, ip: input.ip }, now);
  if (await hasSecondFactor(deps.db, user.id)) throw alreadyOn();
  const secret = newTotpSecret();
  await saveUnconfirmedTotp(deps.db, user.id, sealTotpSecret(await totpSecretBox(deps.db), user.id, secret), now);
  return { secret, uri: totpUri(secret, user.username), user };
}

/**
 * Switches the second factor on once the user proves their app has the secret with a first code.
 * In one transaction: confirmed (that code's step claimed, so it cannot be replayed at sign-in),
 * a fresh set of recovery codes (returned once), every other session of the account ended — from
 * now on every live session of the account has seen the second factor — and the audit row
 * `second_factor.enable`.
 */
export async function confirmTotpEnrolment(
  db: Kysely<Database>,
  input: { userId: string; sessionId: string | null; code: string; ip: string | null },
  now: number = Date.now(),
): Promise<{ recoveryCodes: string[]; endedSessions: number }> {
  const totp = await findTotp(db, input.userId);
  if (!totp) throw new ServiceError("conflict", "Start setting up the authenticator app first.", { code: "enrolment_not_started" });
  if (totp.confirmed_at !== null) throw alreadyOn();
  if (now - totp.created_at > ENROLMENT_MS) throw new ServiceError("conflict", "This setup has expired. Start again.", { code: "enrolment_expired" });
  const step = await totpStepOf(openTotpSecret(await totpSecretBox(db), totp), input.code, null, now);
  if (step === null) throw new ServiceError("invalid_request", "That code is not right. Check the app shows Sputnik and try the current code.", { code: "invalid_code", param: "code" });
  return db.transaction().execute(async (trx) => {
    const confirmed = await trx
      .updateTable("totp_credentials")
      .set({ confirmed_at: now })
      .where("user_id", "=", input.userId)
      .where("confirmed_at", "is", null)
      .where("secret_enc", "=", totp.secret_enc)
      .executeTakeFirst();
    // Restarted or confirmed meanwhile by another request: this code was for a secret no longer pending.
    if (Number(confirmed.numUpdatedRows) !== 1) throw new ServiceError("conflict", "This setup changed meanwhile. Start again.", { code: "enrolment_expired" });
    await claimTotpStep(trx, input.userId, step);
    const recoveryCodes = await replaceRecoveryCodes(trx, input.userId, now);
    let others = trx.updateTable("sessions").set({ revoked_at: now }).where("user_id", "=", input.userId).where("revoked_at", "is", null);
    if (input.sessionId) others = others.where("id", "!=", input.sessionId);
    const endedSessions = Number((await others.executeTakeFirst()).numUpdatedRows);
    await writeAudit(
      trx,
      { actorUserId: input.userId, action: "second_factor.enable", targetType: "user", targetId: input.userId, details: { method: "totp", recovery_codes: recoveryCodes.length, ended_sessions: endedSessions }, ip: input.ip },
      now,
    );
    return { recoveryCodes, endedSessions };
  });
}

/** Turns the second factor off (needs the current password): secret and recovery codes deleted, audited `second_factor.disable`. */
export async function disableSecondFactor(deps: PasswordDeps, input: { userId: string; currentPassword: string; ip: string | null }, now: number = Date.now()): Promise<void> {
  const user = await confirmCurrentPassword(deps, { userId: input.userId, password: input.currentPassword, ip: input.ip }, now);
  await removeSecondFactor(deps.db, { actorUserId: user.id, ip: input.ip }, user, now);
}

/** A new set of recovery codes (needs the current password); the old ones stop working. Audited `second_factor.recovery_codes`. */
export async function regenerateRecoveryCodes(deps: PasswordDeps, input: { userId: string; currentPassword: string; ip: string | null }, now: number = Date.now()): Promise<string[]> {
  const user = await confirmCurrentPassword(deps, { userId: input.userId, password: input.currentPassword, ip: input.ip }, now);
  return deps.db.transaction().execute(async (trx) => {
    if (!(await hasSecondFactor(trx, user.id))) throw new ServiceError("conflict", "Turn on the second factor first.", { code: "second_factor_off" });
    const codes = await replaceRecoveryCodes(trx, user.id, now);
    await writeAudit(trx, { actorUserId: user.id, action: "second_factor.recovery_codes", targetType: "user", targetId: user.id, details: { count: codes.length }, ip: input.ip }, now);
    return codes;
  });
}

/**
 * The operator's way out for an account that lost both its authenticator and its recovery codes:
 * `sputnik admin reset-second-factor --username X` turns the second factor off (audited
 * `second_factor.disable` with `by: "operator"`); the owner signs in with the password and enrols again.
 */
export async function resetSecondFactor(db: Kysely<Database>, by: AdminContext | null, username: string, now: number = Date.now()): Promise<UserRow> {
  const user = username.includes("@") ? undefined : await findUserByLogin(db, username);
  if (!user) throw new ServiceError("not_found", `No account is named ${username}.`, { code: "not_found", param: "username" });
  await removeSecondFactor(db, { actorUserId: by?.userId ?? null, ip: by?.ip ?? null, operator: true }, user, now);
  return user;
}

async function removeSecondFactor(db: Kysely<Database>, by: { actorUserId: string | null; ip: string | null; operator?: boolean }, user: UserRow, now: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const existed = await deleteTotp(trx, user.id);
    if (!existed) throw new ServiceError("conflict", "The second factor is not on.", { code: "second_factor_off" });
    await deleteRecoveryCodes(trx, user.id);
    await deleteUserPendingLogins(trx, user.id);
    await writeAudit(
      trx,
      { actorUserId: by.actorUserId, action: "second_factor.disable", targetType: "user", targetId: user.id, details: { method: "totp", ...(by.operator ? { by: "operator" } : {}) }, ip: by.ip },
      now,
    );
  });
}

/**
 * Sets "require a second factor for administrators" (audited `settings.require_admin_second_factor`).
 * An admin turning it on must have a second factor already: otherwise the switch would take their
 * own admin rights away on their next request. From the command line (`by` null) anything goes.
 */
export async function setAdminSecondFactorRequired(db: Kysely<Database>, by: AdminContext | null, required: boolean, now: number = Date.now()): Promise<boolean> {
  if (required && by && !(await hasSecondFactor(db, by.userId))) {
    throw new ServiceError("conflict", "Set up your own second factor (Settings → Security) before requiring one for administrators.", { code: "second_factor_required" });
  }
  const before = await isAdminSecondFactorRequired(db);
  await db.transaction().execute(async (trx) => {
    await saveAdminSecondFactorRequired(trx, required, by?.userId ?? null, now);
    await writeAudit(trx, { actorUserId: by?.userId ?? null, action: "settings.require_admin_second_factor", details: { from: before, to: required }, ip: by?.ip ?? null }, now);
  });
  forgetAdminSecondFactorSetting(db);
  return isAdminSecondFactorRequired(db);
}

function alreadyOn(): ServiceError {
  return new ServiceError("conflict", "The second factor is already on. Turn it off first to set up a new app.", { code: "second_factor_on" });
}

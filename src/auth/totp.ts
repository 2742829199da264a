import type { Kysely, Selectable } from "kysely";
import { generateSecret, generateURI, verify } from "otplib";
import type { Database, TotpCredentialTable } from "../store/schema.ts";
import type { SecretBox } from "./secretBox.ts";

/**
 * TOTP (RFC 6238) as authenticator apps expect it: SHA-1, 6 digits, 30-second steps, a 160-bit
 * base32 secret. A code is accepted for the step before and after the current one (clock drift,
 * a code typed as it turned over), and never twice: the step of the last accepted code is stored,
 * and only a later step is accepted after it (claimed atomically, so two requests racing with the
 * same code cannot both win).
 */
export type TotpRow = Selectable<TotpCredentialTable>;

export const TOTP_PERIOD_S = 30;
/** ±30 s: one step either side. */
const TOLERANCE_S = TOTP_PERIOD_S;
export const TOTP_ISSUER = "Sputnik";
const CODE = /^\d{6}$/;

export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** The otpauth:// URI a QR code carries: the app shows "Sputnik (alice)". */
export function totpUri(secret: string, accountName: string): string {
  return generateURI({ issuer: TOTP_ISSUER, label: accountName, secret });
}

/** Six digits, spaces allowed (apps show "123 456"); anything else is not a code. */
export function normaliseTotpCode(input: string): string | null {
  const code = input.replace(/\s+/g, "");
  return CODE.test(code) ? code : null;
}

/** The step `code` is valid for (one step of tolerance either way), after `afterStep`; null otherwise. */
export async function totpStepOf(secret: string, code: string, afterStep: number | null, now: number = Date.now()): Promise<number | null> {
  const normalised = normaliseTotpCode(code);
  if (!normalised) return null;
  const result = await verify({
    secret,
    token: normalised,
    epoch: Math.floor(now / 1000),
    epochTolerance: TOLERANCE_S,
    ...(afterStep !== null ? { afterTimeStep: afterStep } : {}),
  });
  // The functional API types its answer for HOTP too; a TOTP answer always carries the step.
  return result.valid && "timeStep" in result ? result.timeStep : null;
}

/** The credential of a user (confirmed or still enrolling). */
export async function findTotp(db: Kysely<Database>, userId: string): Promise<TotpRow | undefined> {
  return db.selectFrom("totp_credentials").selectAll().where("user_id", "=", userId).executeTakeFirst();
}

/** True when the user has a confirmed TOTP second factor. */
export async function hasSecondFactor(db: Kysely<Database>, userId: string): Promise<boolean> {
  const row = await db.selectFrom("totp_credentials").select("user_id").where("user_id", "=", userId).where("confirmed_at", "is not", null).executeTakeFirst();
  return row !== undefined;
}

export function sealTotpSecret(box: SecretBox, userId: string, secret: string): string {
  return box.seal(secret, `totp:${userId}`);
}

export function openTotpSecret(box: SecretBox, row: TotpRow): string {
  return box.open(row.secret_enc, `totp:${row.user_id}`);
}

/** Starts (or restarts) an unconfirmed enrolment with a new sealed secret. */
export async function saveUnconfirmedTotp(db: Kysely<Database>, userId: string, sealed: string, now: number = Date.now()): Promise<void> {
  await db
    .insertInto("totp_credentials")
    .values({ user_id: userId, secret_enc: sealed, created_at: now, confirmed_at: null, last_used_step: null })
    .onConflict((oc) => oc.column("user_id").doUpdateSet({ secret_enc: sealed, created_at: now, confirmed_at: null, last_used_step: null }))
    .execute();
}

/**
 * Records that a code of `step` was accepted, unless one of that step or later already was: the
 * one write that makes a code single-use, atomic across requests and replicas. False: replayed.
 */
export async function claimTotpStep(db: Kysely<Database>, userId: string, step: number): Promise<boolean> {
  const result = await db
    .updateTable("totp_credentials")
    .set({ last_used_step: step })
    .where("user_id", "=", userId)
    .where((eb) => eb.or([eb("last_used_step", "is", null), eb("last_used_step", "<", step)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function deleteTotp(db: Kysely<Database>, userId: string): Promise<boolean> {
  const result = await db.deleteFrom("totp_credentials").where("user_id", "=", userId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Whether an account has a confirmed second factor, and how many recovery codes it has left. */
export interface SecondFactorStatus {
  enabled: boolean;
  confirmedAt: number | null;
  recoveryCodesLeft: number;
}

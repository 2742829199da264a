import type { Kysely } from "kysely";
import { newId } from "../store/ids.ts";
import type { Database } from "../store/schema.ts";
import { randomString, sha256Hex } from "./secrets.ts";

/**
 * One-time recovery codes for a TOTP account that lost its authenticator: `RECOVERY_CODE_COUNT`
 * codes of 16 characters from a 32-letter alphabet without look-alikes (80 random bits each, so a
 * plain SHA-256 is enough to store them, as for API keys), shown once in groups of four. Each works
 * once: using one marks it in a single conditional update, so two racing requests cannot both use it.
 */
export const RECOVERY_CODE_COUNT = 10;
// Crockford's base32 in lower case: no i, l, o, u, so nothing reads as another character.
const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const GROUP = 4;
const LENGTH = 16;

export function newRecoveryCode(): string {
  const raw = randomString(LENGTH, ALPHABET);
  return raw.match(new RegExp(`.{${GROUP}}`, "g"))!.join("-");
}

/** What is hashed: lower case, without separators; i/l read as 1 and o as 0, as people type them. */
export function normaliseRecoveryCode(input: string): string | null {
  const code = input.toLowerCase().replace(/[\s-]+/g, "").replace(/[il]/g, "1").replace(/o/g, "0");
  return code.length === LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : null;
}

/** Replaces every code of the user with a fresh set; returns the codes (to show once). */
export async function replaceRecoveryCodes(db: Kysely<Database>, userId: string, now: number = Date.now()): Promise<string[]> {
  await deleteRecoveryCodes(db, userId);
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  await db
    .insertInto("recovery_codes")
    .values(codes.map((code) => ({ id: newId(now), user_id: userId, code_hash: sha256Hex(normaliseRecoveryCode(code)!), created_at: now, used_at: null })))
    .execute();
  return codes;
}

/** Uses `input` if it is one of the user's unused codes; true when it was (and is now used up). */
export async function useRecoveryCode(db: Kysely<Database>, userId: string, input: string, now: number = Date.now()): Promise<boolean> {
  const code = normaliseRecoveryCode(input);
  if (!code) return false;
  const result = await db
    .updateTable("recovery_codes")
    .set({ used_at: now })
    .where("user_id", "=", userId)
    .where("code_hash", "=", sha256Hex(code))
    .where("used_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function countUnusedRecoveryCodes(db: Kysely<Database>, userId: string): Promise<number> {
  const row = await db
    .selectFrom("recovery_codes")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("user_id", "=", userId)
    .where("used_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function deleteRecoveryCodes(db: Kysely<Database>, userId: string): Promise<void> {
  await db.deleteFrom("recovery_codes").where("user_id", "=", userId).execute();
}

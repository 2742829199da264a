import { randomBytes } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { Database, PasswordResetTokenTable } from "../store/schema.ts";
import { sha256Hex } from "./secrets.ts";

/**
 * Password-reset links issued by an admin (no e-mail: the admin hands the link over). The token is
 * 256 random bits, shown once in the link and stored as its SHA-256; it expires after
 * `RESET_TOKEN_MS` and is used up by one conditional update, so it works once even under races.
 * The link carries it in the URL fragment (`/reset-password#<token>`), which browsers never send
 * to a server, so it stays out of access logs and Referer headers.
 */
export type PasswordResetRow = Selectable<PasswordResetTokenTable>;

export const RESET_TOKEN_MS = 60 * 60_000;
export const RESET_PATH = "/reset-password";
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function resetPathFor(token: string): string {
  return `${RESET_PATH}#${token}`;
}

/** A new link for `userId`; earlier unused links of that user stop working (the newest one counts). */
export async function createPasswordReset(
  db: Kysely<Database>,
  input: { userId: string; createdBy: string | null },
  now: number = Date.now(),
): Promise<{ token: string; row: PasswordResetRow }> {
  await voidPasswordResets(db, input.userId, now);
  const token = randomBytes(32).toString("base64url");
  const row: PasswordResetRow = {
    id: newId(now),
    user_id: input.userId,
    token_hash: sha256Hex(token),
    created_by: input.createdBy,
    created_at: now,
    expires_at: now + RESET_TOKEN_MS,
    used_at: null,
  };
  await db.insertInto("password_reset_tokens").values(row).execute();
  return { token, row };
}

/** The unused, unexpired link behind `token`, or undefined. */
export async function findUsablePasswordReset(db: Kysely<Database>, token: string, now: number = Date.now()): Promise<PasswordResetRow | undefined> {
  if (!TOKEN_PATTERN.test(token)) return undefined;
  return db
    .selectFrom("password_reset_tokens")
    .selectAll()
    .where("token_hash", "=", sha256Hex(token))
    .where("used_at", "is", null)
    .where("expires_at", ">", now)
    .executeTakeFirst();
}

/** Uses the link up; true when this call did (false: already used or expired meanwhile). */
export async function claimPasswordReset(db: Kysely<Database>, id: string, now: number = Date.now()): Promise<boolean> {
  const result = await db
    .updateTable("password_reset_tokens")
    .set({ used_at: now })
    .where("id", "=", id)
    .where("used_at", "is", null)
    .where("expires_at", ">", now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Makes every unused link of a user unusable (a newer link, or the password changed). */
export async function voidPasswordResets(db: Kysely<Database>, userId: string, now: number = Date.now()): Promise<void> {
  await db.updateTable("password_reset_tokens").set({ used_at: now }).where("user_id", "=", userId).where("used_at", "is", null).execute();
}

/** Deletes links that expired more than `keepMs` ago. */
export async function prunePasswordResets(db: Kysely<Database>, keepMs: number, now: number = Date.now()): Promise<void> {
  await db.deleteFrom("password_reset_tokens").where("expires_at", "<", now - keepMs).execute();
}

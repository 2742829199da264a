import { randomBytes } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { Database, PendingLoginTable } from "../store/schema.ts";
import { sha256Hex } from "./secrets.ts";

/**
 * The half-way state of a two-step sign-in: the password was right, the second factor is still
 * owed. The browser holds a random token in an httpOnly cookie (never readable by the page); the
 * table holds only its SHA-256. It lasts `PENDING_LOGIN_MS`, allows `PENDING_LOGIN_MAX_FAILURES`
 * wrong codes (then the password must be typed again), and is deleted by the step that completes
 * it, so it completes at most once.
 */
export type PendingLoginRow = Selectable<PendingLoginTable>;

export const PENDING_LOGIN_MS = 5 * 60_000;
export const PENDING_LOGIN_MAX_FAILURES = 5;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export async function createPendingLogin(db: Kysely<Database>, input: { userId: string; ip: string | null }, now: number = Date.now()): Promise<{ token: string; row: PendingLoginRow }> {
  const token = randomBytes(32).toString("base64url");
  const row: PendingLoginRow = {
    id: newId(now),
    token_hash: sha256Hex(token),
    user_id: input.userId,
    created_at: now,
    expires_at: now + PENDING_LOGIN_MS,
    failures: 0,
    ip: input.ip,
  };
  await db.insertInto("pending_logins").values(row).execute();
  return { token, row };
}

/** The live pending sign-in behind `token`, or undefined (unknown, expired, or used up by failures). */
export async function findPendingLogin(db: Kysely<Database>, token: string | null | undefined, now: number = Date.now()): Promise<PendingLoginRow | undefined> {
  if (!token || !TOKEN_PATTERN.test(token)) return undefined;
  return db
    .selectFrom("pending_logins")
    .selectAll()
    .where("token_hash", "=", sha256Hex(token))
    .where("expires_at", ">", now)
    .where("failures", "<", PENDING_LOGIN_MAX_FAILURES)
    .executeTakeFirst();
}

/** Counts a wrong code; returns how many more this pending sign-in allows (0: it is over). */
export async function recordPendingLoginFailure(db: Kysely<Database>, id: string): Promise<number> {
  const row = await db
    .updateTable("pending_logins")
    .set((eb) => ({ failures: eb("failures", "+", 1) }))
    .where("id", "=", id)
    .returning("failures")
    .executeTakeFirst();
  const left = row ? PENDING_LOGIN_MAX_FAILURES - row.failures : 0;
  if (left <= 0) await deletePendingLogin(db, id);
  return Math.max(0, left);
}

/** Ends a pending sign-in; true when this call ended it (the one caller allowed to complete it). */
export async function deletePendingLogin(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom("pending_logins").where("id", "=", id).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** Ends every pending sign-in of a user (password changed or reset, second factor turned off). */
export async function deleteUserPendingLogins(db: Kysely<Database>, userId: string): Promise<void> {
  await db.deleteFrom("pending_logins").where("user_id", "=", userId).execute();
}

export async function prunePendingLogins(db: Kysely<Database>, now: number = Date.now()): Promise<void> {
  await db.deleteFrom("pending_logins").where("expires_at", "<", now).execute();
}

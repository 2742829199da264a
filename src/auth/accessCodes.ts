import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { AccessCodeTable, Database } from "../store/schema.ts";
import { afterCursor, toPage } from "./cursor.ts";
import { randomString, sha256Hex } from "./secrets.ts";

export type AccessCodeRow = Selectable<AccessCodeTable>;

/**
 * Codes are 16 Crockford base32 characters (80 bits) in four groups, e.g. "7KQ2-M9XD-…": easy to
 * read aloud and type. Input is forgiving (case, spaces, dashes, O for 0, I/L for 1); only a hash of
 * the normalised text is stored. The first group is the visible prefix.
 */
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LENGTH = 16;
const PREFIX_LENGTH = 4;
const NORMALISED = /^[0-9A-HJKMNP-TV-Z]{16}$/;

export function normaliseCode(input: string): string {
  return input
    .toUpperCase()
    .replace(/[\s-]+/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
}

/** The prefix a guess would match, for per-prefix throttling (also for malformed guesses). */
export function codePrefix(input: string): string {
  return normaliseCode(input).slice(0, PREFIX_LENGTH);
}

function formatCode(normalised: string): string {
  return normalised.match(/.{4}/g)!.join("-");
}

export interface AccessCodeGrant {
  accessCodeId: string;
  /** The plan the code puts the user on; null keeps the default plan. */
  planId: string | null;
  creditMicros: number;
}

export interface NewAccessCode {
  maxUses: number;
  expiresAt: number | null;
  planId: string | null;
  creditMicros: number;
  note: string | null;
  createdBy: string | null;
}

/** Creates a code; the returned `code` text exists only here — it is stored hashed. */
export async function createAccessCode(db: Kysely<Database>, input: NewAccessCode, now: number = Date.now()): Promise<{ code: string; row: AccessCodeRow }> {
  const normalised = randomString(CODE_LENGTH, CROCKFORD);
  const row: AccessCodeRow = {
    id: newId(now),
    code_hash: sha256Hex(normalised),
    prefix: normalised.slice(0, PREFIX_LENGTH),
    note: input.note,
    max_uses: input.maxUses,
    uses: 0,
    expires_at: input.expiresAt,
    plan_id: input.planId,
    credit_micros: input.creditMicros,
    created_by: input.createdBy,
    created_at: now,
    revoked_at: null,
  };
  await db.insertInto("access_codes").values(row).execute();
  return { code: formatCode(normalised), row };
}

/**
 * Uses one redemption of `code` for `userId` and returns what it grants, or null when the code is
 * unknown, revoked, expired or used up (one answer for all, so guesses learn nothing). Run it in the
 * sign-up transaction so a failed sign-up gives the use back.
 */
export async function redeemAccessCode(db: Kysely<Database>, code: string, userId: string, now: number = Date.now()): Promise<AccessCodeGrant | null> {
  const grant = await takeAccessCodeUse(db, code, now);
  if (grant) await recordRedemption(db, grant, userId, now);
  return grant;
}

/**
 * Takes one use of `code`, before any account exists (sign-up checks the code before it looks at
 * the user name, so a name's existence is told only to holders of a valid code); null as for
 * `redeemAccessCode`. The use is counted with one conditional UPDATE, so concurrent redemptions can
 * never exceed `max_uses`. Call `recordRedemption` in the same transaction once the account exists.
 */
export async function takeAccessCodeUse(db: Kysely<Database>, code: string, now: number = Date.now()): Promise<AccessCodeGrant | null> {
  const normalised = normaliseCode(code);
  if (!NORMALISED.test(normalised)) return null;
  const used = await db
    .updateTable("access_codes")
    .set((eb) => ({ uses: eb("uses", "+", 1) }))
    .where("code_hash", "=", sha256Hex(normalised))
    .where("revoked_at", "is", null)
    .where((eb) => eb("uses", "<", eb.ref("max_uses")))
    .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
    .returning(["id", "plan_id", "credit_micros"])
    .executeTakeFirst();
  if (!used) return null;
  return { accessCodeId: used.id, planId: used.plan_id, creditMicros: used.credit_micros };
}

/** Records what one use of a code granted to `userId` (billing credits it). */
export async function recordRedemption(db: Kysely<Database>, grant: AccessCodeGrant, userId: string, now: number = Date.now()): Promise<void> {
  await db
    .insertInto("access_code_redemptions")
    .values({ id: newId(now), access_code_id: grant.accessCodeId, user_id: userId, plan_id: grant.planId, credit_micros: grant.creditMicros, created_at: now })
    .execute();
}

export async function findAccessCode(db: Kysely<Database>, id: string): Promise<AccessCodeRow | undefined> {
  return db.selectFrom("access_codes").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function listAccessCodes(db: Kysely<Database>, opts: { limit: number; cursor?: string }): Promise<{ items: AccessCodeRow[]; nextCursor: string | null }> {
  let q = db.selectFrom("access_codes").selectAll();
  if (opts.cursor) {
    q = q.where(afterCursor(opts.cursor));
  }
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(opts.limit + 1).execute();
  return toPage(rows, opts.limit);
}

/** Revokes a code; returns false when it was already revoked. */
export async function revokeAccessCode(db: Kysely<Database>, id: string, now: number = Date.now()): Promise<boolean> {
  const result = await db.updateTable("access_codes").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** What each use of a code granted, oldest first (billing credits these). */
export async function listRedemptions(db: Kysely<Database>, filter: { userId?: string; accessCodeId?: string }) {
  let q = db.selectFrom("access_code_redemptions").selectAll();
  if (filter.userId) q = q.where("user_id", "=", filter.userId);
  if (filter.accessCodeId) q = q.where("access_code_id", "=", filter.accessCodeId);
  return q.orderBy("created_at").orderBy("id").execute();
}

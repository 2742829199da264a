import { randomBytes } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { Database, SessionTable } from "../store/schema.ts";
import { sha256Hex } from "./secrets.ts";
import type { UserRow } from "./users.ts";

export type SessionRow = Selectable<SessionTable>;

export interface SessionLifetime {
  /** A session ends this long after sign-in, whatever happens. */
  maxAgeMs: number;
  /** …and sooner when unused for this long. */
  idleMs: number;
}

/** 32 random bytes, base64url: what the cookie carries. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
// Writing last_seen_at on every request would turn each read into a write.
const TOUCH_EVERY_MS = 60_000;

export async function createSession(
  db: Kysely<Database>,
  input: { userId: string; userAgent: string | null; ip: string | null; lifetime: SessionLifetime; signInMethod?: "password" | "sso" },
  now: number = Date.now(),
): Promise<{ token: string; session: SessionRow }> {
  const token = randomBytes(32).toString("base64url");
  const session: SessionRow = {
    id: newId(now),
    token_hash: sha256Hex(token),
    user_id: input.userId,
    created_at: now,
    last_seen_at: now,
    expires_at: now + input.lifetime.maxAgeMs,
    revoked_at: null,
    user_agent: input.userAgent?.slice(0, 512) ?? null,
    ip: input.ip,
    sign_in_method: input.signInMethod ?? "password",
  };
  await db.insertInto("sessions").values(session).execute();
  return { token, session };
}

/**
 * The live session behind a cookie token and its account, or undefined when the token is unknown,
 * revoked, expired or idle too long, or the account is not active (disabling a user ends their
 * sessions at once because this is checked on every request).
 */
export async function resolveSession(
  db: Kysely<Database>,
  token: string,
  lifetime: SessionLifetime,
  now: number = Date.now(),
): Promise<{ session: SessionRow; user: UserRow } | undefined> {
  if (!TOKEN_PATTERN.test(token)) return undefined;
  const row = await db
    .selectFrom("sessions as s")
    .innerJoin("users as u", "u.id", "s.user_id")
    .selectAll("s")
    .select(["u.username", "u.email", "u.password_hash", "u.role", "u.status", "u.plan_id", "u.created_at as user_created_at", "u.updated_at as user_updated_at", "u.last_login_at"])
    .where("s.token_hash", "=", sha256Hex(token))
    .where("s.revoked_at", "is", null)
    .where("s.expires_at", ">", now)
    .where("s.last_seen_at", ">", now - lifetime.idleMs)
    .where("u.status", "=", "active")
    .executeTakeFirst();
  if (!row) return undefined;
  if (now - row.last_seen_at > TOUCH_EVERY_MS) {
    await db.updateTable("sessions").set({ last_seen_at: now }).where("id", "=", row.id).execute();
  }
  const session: SessionRow = {
    id: row.id,
    token_hash: row.token_hash,
    user_id: row.user_id,
    created_at: row.created_at,
    last_seen_at: row.last_seen_at,
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    user_agent: row.user_agent,
    ip: row.ip,
    sign_in_method: row.sign_in_method,
  };
  const user: UserRow = {
    id: row.user_id,
    username: row.username,
    email: row.email,
    password_hash: row.password_hash,
    role: row.role,
    status: row.status,
    plan_id: row.plan_id,
    created_at: row.user_created_at,
    updated_at: row.user_updated_at,
    last_login_at: row.last_login_at,
  };
  return { session, user };
}

export async function findSession(db: Kysely<Database>, id: string): Promise<SessionRow | undefined> {
  return db.selectFrom("sessions").selectAll().where("id", "=", id).executeTakeFirst();
}

/** A user's sessions that still work, newest first. */
export async function listLiveSessions(db: Kysely<Database>, userId: string, lifetime: SessionLifetime, now: number = Date.now()): Promise<SessionRow[]> {
  return db
    .selectFrom("sessions")
    .selectAll()
    .where("user_id", "=", userId)
    .where("revoked_at", "is", null)
    .where("expires_at", ">", now)
    .where("last_seen_at", ">", now - lifetime.idleMs)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .execute();
}

/**
 * True when `token` was a session of an account that is now disabled: the app tells its user why
 * they were signed out rather than just showing the sign-in form.
 */
export async function sessionOfDisabledAccount(db: Kysely<Database>, token: string): Promise<boolean> {
  if (!TOKEN_PATTERN.test(token)) return false;
  const row = await db
    .selectFrom("sessions as s")
    .innerJoin("users as u", "u.id", "s.user_id")
    .select("u.status")
    .where("s.token_hash", "=", sha256Hex(token))
    .executeTakeFirst();
  return row?.status === "disabled";
}

export async function revokeSession(db: Kysely<Database>, id: string, now: number = Date.now()): Promise<void> {
  await db.updateTable("sessions").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).execute();
}

/** Ends every session of a user (disabled, password changed…). */
export async function revokeUserSessions(db: Kysely<Database>, userId: string, now: number = Date.now()): Promise<void> {
  await db.updateTable("sessions").set({ revoked_at: now }).where("user_id", "=", userId).where("revoked_at", "is", null).execute();
}

/** Deletes sessions that ended (expired or revoked) more than `keepMs` ago. */
export async function pruneSessions(db: Kysely<Database>, keepMs: number, now: number = Date.now()): Promise<void> {
  const before = now - keepMs;
  await db
    .deleteFrom("sessions")
    .where((eb) => eb.or([eb("expires_at", "<", before), eb("revoked_at", "<", before)]))
    .execute();
}

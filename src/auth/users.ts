import { sql, type Kysely, type Selectable } from "kysely";
import { z } from "zod";
import { newId } from "../store/ids.ts";
import type { Database, UserTable } from "../store/schema.ts";
import type { Role } from "./actor.ts";
import { afterCursor, toPage } from "./cursor.ts";

export type UserRow = Selectable<UserTable>;
export type UserStatus = UserRow["status"];

/** 3–32 characters, starting with a letter or digit; compared case-insensitively. */
export const usernameSchema = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9_.-]{2,31}$/, "3 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit");
export const emailSchema = z.string().trim().toLowerCase().max(254).pipe(z.email());

export const DEFAULT_PLAN_ID = "free";

/** A user name or e-mail address already belongs to an account. */
export class AccountTakenError extends Error {
  constructor(readonly field: "username" | "email") {
    super(`That ${field === "username" ? "user name" : "e-mail address"} is already taken.`);
    this.name = "AccountTakenError";
  }
}

export async function findUserById(db: Kysely<Database>, id: string): Promise<UserRow | undefined> {
  return db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
}

/** By user name, or by e-mail when `login` contains "@"; case-insensitive. */
export async function findUserByLogin(db: Kysely<Database>, login: string): Promise<UserRow | undefined> {
  const key = login.trim().toLowerCase();
  if (key === "") return undefined;
  return db
    .selectFrom("users")
    .selectAll()
    .where(key.includes("@") ? "email" : "username", "=", key)
    .executeTakeFirst();
}

export async function anyUserExists(db: Kysely<Database>): Promise<boolean> {
  const row = await db.selectFrom("users").select("id").limit(1).executeTakeFirst();
  return row !== undefined;
}

export interface NewUser {
  username: string;
  email: string | null;
  passwordHash: string;
  role: Role;
  status: UserStatus;
  planId: string | null;
}

/** Inserts an account; throws AccountTakenError when the name or e-mail is in use. */
export async function insertUser(db: Kysely<Database>, user: NewUser, now: number = Date.now()): Promise<UserRow> {
  const taken = await db
    .selectFrom("users")
    .select(["username", "email"])
    .where((eb) => eb.or([eb("username", "=", user.username), ...(user.email ? [eb("email", "=", user.email)] : [])]))
    .executeTakeFirst();
  if (taken) throw new AccountTakenError(taken.username === user.username ? "username" : "email");
  const row: UserRow = {
    id: newId(now),
    username: user.username,
    email: user.email,
    password_hash: user.passwordHash,
    role: user.role,
    status: user.status,
    plan_id: user.planId,
    created_at: now,
    updated_at: now,
    last_login_at: null,
  };
  try {
    await db.insertInto("users").values(row).execute();
  } catch (error) {
    // Two sign-ups racing for one name: the unique index decides.
    const field = uniqueViolation(error);
    if (field) throw new AccountTakenError(field);
    throw error;
  }
  return row;
}

export async function updateUser(
  db: Kysely<Database>,
  id: string,
  patch: Partial<Pick<UserRow, "role" | "status" | "plan_id" | "password_hash" | "last_login_at">>,
  now: number = Date.now(),
): Promise<void> {
  await db.updateTable("users").set({ ...patch, updated_at: now }).where("id", "=", id).execute();
}

export async function countActiveAdmins(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("role", "=", "admin")
    .where("status", "=", "active")
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface ListUsersOptions {
  /** Substring of the user name or e-mail. */
  search?: string;
  status?: UserStatus;
  role?: Role;
  limit: number;
  /** From the previous page's `nextCursor`. */
  cursor?: string;
}

/** Newest first, keyset-paged. Throws InvalidCursorError for a cursor this function didn't make. */
export async function listUsers(db: Kysely<Database>, opts: ListUsersOptions): Promise<{ items: UserRow[]; nextCursor: string | null }> {
  let q = db.selectFrom("users").selectAll();
  if (opts.search) {
    const pattern = `%${opts.search.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where(sql<boolean>`(username like ${pattern} escape '\\' or email like ${pattern} escape '\\')`);
  }
  if (opts.status) q = q.where("status", "=", opts.status);
  if (opts.role) q = q.where("role", "=", opts.role);
  if (opts.cursor) {
    q = q.where(afterCursor(opts.cursor));
  }
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(opts.limit + 1).execute();
  return toPage(rows, opts.limit);
}

function uniqueViolation(error: unknown): "username" | "email" | null {
  const e = error as { code?: string; message?: string; constraint?: string };
  const text = `${e.constraint ?? ""} ${e.message ?? ""}`;
  if (e.code !== "23505" && !String(e.code).startsWith("SQLITE_CONSTRAINT")) return null;
  if (/email/.test(text)) return "email";
  if (/username/.test(text)) return "username";
  return null;
}

const FIRST_ACCOUNT_KEY = "first_account";

/**
 * True for exactly one caller ever: the creator of the first account on this install, who becomes
 * admin. A row in `settings` decides it (insert-if-absent), so two sign-ups racing on a fresh
 * install cannot both win, on either database. Call inside the transaction that inserts the user.
 */
export async function claimFirstAccount(db: Kysely<Database>, userId: string, now: number = Date.now()): Promise<boolean> {
  const inserted = await db
    .insertInto("settings")
    .values({ key: FIRST_ACCOUNT_KEY, value: JSON.stringify(userId), updated_at: now, updated_by: userId })
    .onConflict((oc) => oc.column("key").doNothing())
    .returning("key")
    .executeTakeFirst();
  return inserted !== undefined;
}

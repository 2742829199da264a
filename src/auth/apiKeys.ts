import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { ApiKeyTable, Database } from "../store/schema.ts";
import { randomString, sha256Hex } from "./secrets.ts";
import type { UserRow } from "./users.ts";

export type ApiKeyRow = Selectable<ApiKeyTable>;

/**
 * Keys look like OpenAI's: "sk-" and 48 base62 characters (285 bits). Anything else is refused
 * before the database is asked, so malformed or injection-shaped tokens cost nothing.
 */
export const API_KEY_PATTERN = /^sk-[0-9A-Za-z]{48}$/;
const PREFIX_LENGTH = 11; // "sk-" + 8 characters
export const MAX_LIVE_KEYS_PER_USER = 100;
const TOUCH_EVERY_MS = 60_000;

export function looksLikeApiKey(token: string): boolean {
  return API_KEY_PATTERN.test(token);
}

export async function createApiKey(
  db: Kysely<Database>,
  input: { userId: string; name: string; models: string[] | null; expiresAt: number | null },
  now: number = Date.now(),
): Promise<{ key: string; row: ApiKeyRow }> {
  const key = `sk-${randomString(48)}`;
  const row: ApiKeyRow = {
    id: newId(now),
    user_id: input.userId,
    name: input.name,
    prefix: key.slice(0, PREFIX_LENGTH),
    key_hash: sha256Hex(key),
    models: input.models ? JSON.stringify(input.models) : null,
    created_at: now,
    expires_at: input.expiresAt,
    last_used_at: null,
    revoked_at: null,
  };
  await db.insertInto("api_keys").values(row).execute();
  return { key, row };
}

/**
 * The live key and its active account, or undefined: unknown, revoked or expired keys, and keys of
 * accounts that are not active, all fail — checked on every request, so disabling takes effect at once.
 */
export async function resolveApiKey(
  db: Kysely<Database>,
  key: string,
  now: number = Date.now(),
): Promise<{ key: ApiKeyRow; user: Pick<UserRow, "id" | "role" | "plan_id"> } | undefined> {
  if (!looksLikeApiKey(key)) return undefined;
  const row = await db
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.user_id")
    .selectAll("k")
    .select(["u.role", "u.plan_id"])
    .where("k.key_hash", "=", sha256Hex(key))
    .where("k.revoked_at", "is", null)
    .where((eb) => eb.or([eb("k.expires_at", "is", null), eb("k.expires_at", ">", now)]))
    .where("u.status", "=", "active")
    .executeTakeFirst();
  if (!row) return undefined;
  if (row.last_used_at === null || now - row.last_used_at > TOUCH_EVERY_MS) {
    await db.updateTable("api_keys").set({ last_used_at: now }).where("id", "=", row.id).execute();
  }
  const { role, plan_id, ...key_ } = row;
  return { key: key_, user: { id: row.user_id, role, plan_id } };
}

/** A key that has not been revoked (expired keys are still found: their owner may look at them). */
export async function findApiKey(db: Kysely<Database>, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom("api_keys").selectAll().where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
}

export async function listApiKeys(db: Kysely<Database>, userId: string): Promise<ApiKeyRow[]> {
  return db
    .selectFrom("api_keys")
    .selectAll()
    .where("user_id", "=", userId)
    .where("revoked_at", "is", null)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .execute();
}

export async function countLiveApiKeys(db: Kysely<Database>, userId: string): Promise<number> {
  const row = await db
    .selectFrom("api_keys")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("user_id", "=", userId)
    .where("revoked_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function renameApiKey(db: Kysely<Database>, id: string, name: string): Promise<void> {
  await db.updateTable("api_keys").set({ name }).where("id", "=", id).execute();
}

export async function revokeApiKey(db: Kysely<Database>, id: string, now: number = Date.now()): Promise<void> {
  await db.updateTable("api_keys").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).execute();
}

/** The model ids a key is limited to, or null for every model. */
export function keyModels(row: Pick<ApiKeyRow, "models">): string[] | null {
  if (row.models === null) return null;
  try {
    const value = JSON.parse(row.models) as unknown;
    if (Array.isArray(value) && value.every((m) => typeof m === "string")) return value;
  } catch {
    // fall through
  }
  // A scope we cannot read grants nothing, rather than everything.
  return [];
}

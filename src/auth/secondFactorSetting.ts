import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { hasSecondFactor } from "./totp.ts";

/**
 * The admins' "require a second factor for administrators" switch, kept in the `settings` table
 * beside the sign-up and attack modes (key `require_admin_second_factor`, JSON boolean; absent:
 * off). Read on every request of an admin session, so cached for a moment like the sign-up
 * settings: the process that changes it forgets its copy at once, other replicas follow within
 * CACHE_MS.
 */
const KEY = "require_admin_second_factor";
const CACHE_MS = 2000;
const cache = new WeakMap<object, { at: number; value: Promise<boolean> }>();

export async function isAdminSecondFactorRequired(db: Kysely<Database>): Promise<boolean> {
  const hit = cache.get(db);
  const now = Date.now();
  if (hit && now - hit.at < CACHE_MS) return hit.value;
  const value = db
    .selectFrom("settings")
    .select("value")
    .where("key", "=", KEY)
    .executeTakeFirst()
    // A value that doesn't parse (edited by hand) reads as on: the strict side.
    .then((row) => (row ? row.value !== "false" : false));
  cache.set(db, { at: now, value });
  value.catch(() => cache.delete(db));
  return value;
}

export async function saveAdminSecondFactorRequired(db: Kysely<Database>, required: boolean, by: string | null, now: number = Date.now()): Promise<void> {
  const value = JSON.stringify(required);
  await db
    .insertInto("settings")
    .values({ key: KEY, value, updated_at: now, updated_by: by })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now, updated_by: by }))
    .execute();
}

export function forgetAdminSecondFactorSetting(db: Kysely<Database>): void {
  cache.delete(db);
}

/**
 * The rule: while the switch is on, an admin account without a confirmed second factor has no
 * admin rights in its sessions until it enrols (it keeps everything an ordinary user has, so it
 * can reach Settings → Security to enrol). False for anyone who is not an admin.
 */
export async function adminMustEnrol(db: Kysely<Database>, user: { id: string; role: string }): Promise<boolean> {
  if (user.role !== "admin") return false;
  if (!(await isAdminSecondFactorRequired(db))) return false;
  return !(await hasSecondFactor(db, user.id));
}

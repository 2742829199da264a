import type { Kysely } from "kysely";
import { z } from "zod";
import type { Database } from "../store/schema.ts";

/**
 * Who may create an account, set by admins at runtime:
 * - `open`: anyone;
 * - `code`: only with a valid access code;
 * - `approval`: anyone, but new accounts wait as `pending` until an admin approves them (a valid
 *   access code skips the wait);
 * - `closed`: nobody (admins still create accounts from the CLI).
 *
 * Attack mode is an emergency switch on top: while on, sign-up is at least as strict as its own
 * mode (`code` or `closed`), and the limits module tightens rate limits (`isAttackMode`).
 */
export const SIGNUP_MODES = ["open", "approval", "code", "closed"] as const;
export type SignupMode = (typeof SIGNUP_MODES)[number];
export const signupModeSchema = z.enum(SIGNUP_MODES);
export const attackSignupModeSchema = z.enum(["code", "closed"]);
export type AttackSignupMode = z.infer<typeof attackSignupModeSchema>;

/**
 * Until an admin chooses: new accounts wait for an admin's approval. The first account needs none
 * (it becomes the admin), so a fresh install still sets up in one step; after that, strangers who
 * find the server cannot simply start using it. `open` is one command away for public services.
 */
export const DEFAULT_SIGNUP_MODE: SignupMode = "approval";

export interface AttackMode {
  enabled: boolean;
  /** The sign-up mode attack mode imposes while on. */
  signupMode: AttackSignupMode;
  /** When it was last switched, and by whom (user id; null from the CLI or never switched). */
  updatedAt: number | null;
  updatedBy: string | null;
}

export interface SignupSettings {
  /** The mode admins chose. */
  mode: SignupMode;
  attack: AttackMode;
  /** What sign-up obeys now: the stricter of `mode` and attack mode's, while attack mode is on. */
  effective: SignupMode;
}

const SIGNUP_MODE_KEY = "signup_mode";
const ATTACK_MODE_KEY = "attack_mode";
const attackValueSchema = z.object({ enabled: z.boolean(), signup_mode: attackSignupModeSchema });

// Read on every sign-up and (by the limits module) on every request, so kept for a moment; the
// process that changes a setting forgets its copy at once (forgetSignupSettings), and other
// replicas follow within CACHE_MS.
const CACHE_MS = 2000;
const cache = new WeakMap<object, { at: number; value: Promise<SignupSettings> }>();

export async function getSignupSettings(db: Kysely<Database>): Promise<SignupSettings> {
  const hit = cache.get(db);
  const now = Date.now();
  if (hit && now - hit.at < CACHE_MS) return hit.value;
  const value = readSignupSettings(db);
  cache.set(db, { at: now, value });
  value.catch(() => cache.delete(db));
  return value;
}

/** The sign-up mode in force now (attack mode included). */
export async function getSignupMode(db: Kysely<Database>): Promise<SignupMode> {
  return (await getSignupSettings(db)).effective;
}

export async function isAttackMode(db: Kysely<Database>): Promise<boolean> {
  return (await getSignupSettings(db)).attack.enabled;
}

/** Drops the cached settings of `db`; call after committing a change. */
export function forgetSignupSettings(db: Kysely<Database>): void {
  cache.delete(db);
}

export async function saveSignupMode(db: Kysely<Database>, mode: SignupMode, by: string | null, now: number = Date.now()): Promise<void> {
  await putSetting(db, SIGNUP_MODE_KEY, JSON.stringify(mode), by, now);
}

export async function saveAttackMode(
  db: Kysely<Database>,
  value: { enabled: boolean; signupMode: AttackSignupMode },
  by: string | null,
  now: number = Date.now(),
): Promise<void> {
  await putSetting(db, ATTACK_MODE_KEY, JSON.stringify({ enabled: value.enabled, signup_mode: value.signupMode }), by, now);
}

export function stricterMode(a: SignupMode, b: SignupMode): SignupMode {
  return SIGNUP_MODES.indexOf(a) >= SIGNUP_MODES.indexOf(b) ? a : b;
}

async function readSignupSettings(db: Kysely<Database>): Promise<SignupSettings> {
  const rows = await db
    .selectFrom("settings")
    .select(["key", "value", "updated_at", "updated_by"])
    .where("key", "in", [SIGNUP_MODE_KEY, ATTACK_MODE_KEY])
    .execute();
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const modeRow = byKey.get(SIGNUP_MODE_KEY);
  const attackRow = byKey.get(ATTACK_MODE_KEY);
  // A value that doesn't parse (edited by hand) falls back to the strict side, never the open one.
  const mode = modeRow ? (signupModeSchema.safeParse(parseJson(modeRow.value)).data ?? "closed") : DEFAULT_SIGNUP_MODE;
  const attackValue = attackRow ? attackValueSchema.safeParse(parseJson(attackRow.value)) : null;
  const attack: AttackMode = attackValue
    ? attackValue.success
      ? { enabled: attackValue.data.enabled, signupMode: attackValue.data.signup_mode, updatedAt: attackRow!.updated_at, updatedBy: attackRow!.updated_by }
      : { enabled: true, signupMode: "closed", updatedAt: attackRow!.updated_at, updatedBy: attackRow!.updated_by }
    : { enabled: false, signupMode: "code", updatedAt: null, updatedBy: null };
  return { mode, attack, effective: attack.enabled ? stricterMode(mode, attack.signupMode) : mode };
}

async function putSetting(db: Kysely<Database>, key: string, value: string, by: string | null, now: number): Promise<void> {
  await db
    .insertInto("settings")
    .values({ key, value, updated_at: now, updated_by: by })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now, updated_by: by }))
    .execute();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import {
  forgetSignupSettings,
  getSignupSettings,
  saveAttackMode,
  saveSignupMode,
  type AttackSignupMode,
  type SignupMode,
  type SignupSettings,
} from "../auth/signupMode.ts";
import type { Database } from "../store/schema.ts";
import type { AdminContext } from "./manageUsers.ts";

/** Sets the sign-up mode (audited); in force for this process at once. */
export async function changeSignupMode(db: Kysely<Database>, by: AdminContext | null, mode: SignupMode, now: number = Date.now()): Promise<SignupSettings> {
  const before = await getSignupSettings(db);
  await db.transaction().execute(async (trx) => {
    await saveSignupMode(trx, mode, by?.userId ?? null, now);
    await writeAudit(trx, { actorUserId: by?.userId ?? null, action: "settings.signup_mode", details: { from: before.mode, to: mode }, ip: by?.ip ?? null }, now);
  });
  forgetSignupSettings(db);
  return getSignupSettings(db);
}

/** Switches attack mode on or off (audited); in force for this process at once. */
export async function changeAttackMode(
  db: Kysely<Database>,
  by: AdminContext | null,
  value: { enabled: boolean; signupMode?: AttackSignupMode },
  now: number = Date.now(),
): Promise<SignupSettings> {
  const before = await getSignupSettings(db);
  const signupMode = value.signupMode ?? before.attack.signupMode;
  await db.transaction().execute(async (trx) => {
    await saveAttackMode(trx, { enabled: value.enabled, signupMode }, by?.userId ?? null, now);
    await writeAudit(
      trx,
      { actorUserId: by?.userId ?? null, action: "settings.attack_mode", details: { enabled: value.enabled, signup_mode: signupMode, was_enabled: before.attack.enabled }, ip: by?.ip ?? null },
      now,
    );
  });
  forgetSignupSettings(db);
  return getSignupSettings(db);
}

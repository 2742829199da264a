import type { Kysely } from "kysely";
import { forgetSignupSettings, saveSignupMode, type SignupMode } from "../../src/auth/signupMode.ts";
import type { Database } from "../../src/store/schema.ts";

/**
 * Puts a test server's database in sign-up `mode`, as an admin's choice would, but without an
 * audit entry (tests count those). `null` keeps the shipped default (`approval`).
 */
export async function setSignupModeForTests(db: Kysely<Database>, mode: SignupMode | null): Promise<void> {
  if (mode === null) return;
  await saveSignupMode(db, mode, null);
  forgetSignupSettings(db);
}

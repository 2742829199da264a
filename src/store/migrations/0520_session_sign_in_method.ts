import type { Kysely } from "kysely";

// How each session was signed in: `password` (with the second factor when the account has one) or
// `sso` (an OpenID provider vouched for the person, with its own MFA). The admin second-factor
// requirement is decided per session from it (src/auth/authenticate.ts). Existing sessions were
// all password sign-ins.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("sessions").addColumn("sign_in_method", "text", (c) => c.notNull().defaultTo("password")).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("sessions").dropColumn("sign_in_method").execute();
}

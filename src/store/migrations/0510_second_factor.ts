import type { Kysely } from "kysely";

// Second factor and password lifecycle: TOTP credentials (the secret encrypted, since the server
// must read it back to check codes), one-time recovery codes, admin-issued password-reset links,
// and sign-ins that passed the password and wait for their second factor. Every token or code a
// person types or carries in a link is stored hashed; only the TOTP secret is reversible.

export async function up(db: Kysely<any>): Promise<void> {
  // One per account. `confirmed_at` null: enrolment started, not yet proven with a first code.
  await db.schema
    .createTable("totp_credentials")
    .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id").onDelete("cascade"))
    // AES-256-GCM under a key derived from the service secret, bound to the user id (src/auth/secretBox.ts).
    .addColumn("secret_enc", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("confirmed_at", "bigint")
    // The last 30-second step a code was accepted for: no code is accepted twice (replay).
    .addColumn("last_used_step", "bigint")
    .execute();

  await db.schema
    .createTable("recovery_codes")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    // SHA-256 of the normalised code (80 random bits: a plain hash is enough).
    .addColumn("code_hash", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .execute();
  await db.schema.createIndex("recovery_codes_user_idx").on("recovery_codes").columns(["user_id", "code_hash"]).execute();

  await db.schema
    .createTable("password_reset_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    // The admin who issued it; null from the command line.
    .addColumn("created_by", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .execute();
  await db.schema.createIndex("password_reset_tokens_user_idx").on("password_reset_tokens").columns(["user_id"]).execute();

  await db.schema
    .createTable("pending_logins")
    .addColumn("id", "text", (c) => c.primaryKey())
    // SHA-256 of the httpOnly cookie's token.
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    // Wrong codes against this sign-in; past a few, it ends and the password is asked again.
    .addColumn("failures", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("ip", "text")
    .execute();
  await db.schema.createIndex("pending_logins_user_idx").on("pending_logins").columns(["user_id"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["pending_logins", "password_reset_tokens", "recovery_codes", "totp_credentials"]) {
    await db.schema.dropTable(table).execute();
  }
}

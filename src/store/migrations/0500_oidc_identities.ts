import type { Kysely } from "kysely";

// Single sign-on: which account an OpenID Connect identity signs in to. An identity is the
// provider's `sub` under one configured provider (auth.oidcProviders[].id) — never an e-mail
// address — so two providers that happen to issue the same `sub` are two identities.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("oidc_identities")
    .addColumn("provider_id", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    // The issuer the identity was first seen from: a provider id later pointed at another issuer
    // must not hand its `sub`s the accounts of the first one.
    .addColumn("issuer", "text", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    // Last e-mail address the provider sent (for admins to recognise the identity); not used to link.
    .addColumn("email", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_login_at", "bigint")
    .addPrimaryKeyConstraint("oidc_identities_pk", ["provider_id", "subject"])
    .execute();
  await db.schema.createIndex("oidc_identities_user_idx").on("oidc_identities").column("user_id").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("oidc_identities").execute();
}

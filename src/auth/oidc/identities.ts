import type { Kysely, Selectable } from "kysely";
import type { Database, OidcIdentityTable } from "../../store/schema.ts";

export type OidcIdentityRow = Selectable<OidcIdentityTable>;

/** The identity (provider id, sub): the only way an SSO sign-in finds its account. */
export async function findIdentity(db: Kysely<Database>, providerId: string, subject: string): Promise<OidcIdentityRow | undefined> {
  return db.selectFrom("oidc_identities").selectAll().where("provider_id", "=", providerId).where("subject", "=", subject).executeTakeFirst();
}

export async function linkIdentity(
  db: Kysely<Database>,
  identity: { providerId: string; subject: string; issuer: string; userId: string; email: string | null },
  now: number = Date.now(),
): Promise<void> {
  await db
    .insertInto("oidc_identities")
    .values({
      provider_id: identity.providerId,
      subject: identity.subject,
      issuer: identity.issuer,
      user_id: identity.userId,
      email: identity.email,
      created_at: now,
      last_login_at: now,
    })
    .execute();
}

export async function touchIdentity(db: Kysely<Database>, providerId: string, subject: string, email: string | null, now: number = Date.now()): Promise<void> {
  await db
    .updateTable("oidc_identities")
    .set({ last_login_at: now, email })
    .where("provider_id", "=", providerId)
    .where("subject", "=", subject)
    .execute();
}

/** The identities linked to an account (for admins; a user may have several). */
export async function listIdentities(db: Kysely<Database>, userId: string): Promise<OidcIdentityRow[]> {
  return db.selectFrom("oidc_identities").selectAll().where("user_id", "=", userId).orderBy("created_at").execute();
}

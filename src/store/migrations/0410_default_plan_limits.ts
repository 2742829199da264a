import type { Kysely } from "kysely";

// Safer defaults for a fresh install: the `free` plan (the default plan) gets token quotas that an
// operator sees in the admin billing page and can raise or clear, instead of none. 500,000 tokens
// a day is a few hundred R1 answers with their reasoning; 5,000,000 a month is ten such days.
// Installs that already have accounts keep the plan their operator has been running with.

const DAILY = 500_000;
const MONTHLY = 5_000_000;

export async function up(db: Kysely<any>): Promise<void> {
  const anyUser = await db.selectFrom("users").select("id").limit(1).executeTakeFirst();
  if (anyUser) return;
  await db
    .updateTable("plans")
    .set({ daily_token_quota: DAILY, monthly_token_quota: MONTHLY, updated_at: Date.now() })
    .where("id", "=", "free")
    .where("daily_token_quota", "is", null)
    .where("monthly_token_quota", "is", null)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db
    .updateTable("plans")
    .set({ daily_token_quota: null, monthly_token_quota: null })
    .where("id", "=", "free")
    .where("daily_token_quota", "=", DAILY)
    .where("monthly_token_quota", "=", MONTHLY)
    .execute();
}

import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { tokensUsedSince } from "./ledger.ts";
import type { Plan } from "./plans.ts";
import { startOfDay, startOfMonth, startOfNextDay, startOfNextMonth } from "./zonedTime.ts";

/**
 * Token quotas per plan, per local day and month of the billing time zone. A request is admitted
 * while the period's usage is below the quota; the request that crosses it still completes (its
 * size is not known in advance), and the next one is refused until the period resets.
 */

export interface QuotaExceeded {
  period: "daily" | "monthly";
  limit: number;
  used: number;
  /** When enough quota comes back to admit a request again (ms since the epoch). */
  resetAt: number;
}

/** The exhausted quota that keeps the user out longest, or null when every quota has room. */
export async function exceededQuota(
  db: Kysely<Database>,
  plan: Plan,
  userId: string,
  now: number,
  timeZone: string,
): Promise<QuotaExceeded | null> {
  const periods = [
    { period: "daily" as const, limit: plan.dailyTokenQuota, start: () => startOfDay(now, timeZone), reset: () => startOfNextDay(now, timeZone) },
    { period: "monthly" as const, limit: plan.monthlyTokenQuota, start: () => startOfMonth(now, timeZone), reset: () => startOfNextMonth(now, timeZone) },
  ];
  let worst: QuotaExceeded | null = null;
  for (const p of periods) {
    if (p.limit === null) continue;
    const used = await tokensUsedSince(db, userId, p.start());
    if (used < p.limit) continue;
    const exceeded = { period: p.period, limit: p.limit, used, resetAt: p.reset() };
    if (!worst || exceeded.resetAt > worst.resetAt) worst = exceeded;
  }
  return worst;
}

/**
 * The plan's daily search quota, when it is used up: web searches (line items of meter `search`)
 * of the user's requests started since the local day began. Like the token quotas, a request is
 * admitted while the count is below the quota; null when there is room (or no quota).
 */
export async function exceededSearchQuota(
  db: Kysely<Database>,
  plan: Plan,
  userId: string,
  now: number,
  timeZone: string,
): Promise<QuotaExceeded | null> {
  const limit = plan.dailySearchQuota ?? null;
  if (limit === null) return null;
  const row = await db
    .selectFrom("ledger_items")
    .innerJoin("usage_ledger", "usage_ledger.id", "ledger_items.entry_id")
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>("ledger_items.quantity"), eb.lit(0)).as("used"))
    .where("usage_ledger.user_id", "=", userId)
    .where("usage_ledger.started_at", ">=", startOfDay(now, timeZone))
    .where("ledger_items.meter", "=", "search")
    .executeTakeFirstOrThrow();
  const used = Number(row.used);
  return used < limit ? null : { period: "daily", limit, used, resetAt: startOfNextDay(now, timeZone) };
}

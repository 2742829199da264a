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

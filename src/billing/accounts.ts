import type { Kysely } from "kysely";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import { getBalance, listCredits, type Balance, type CreditRecord } from "./balances.ts";
import { tokensUsedSince } from "./ledger.ts";
import { resolvePlan, type Plan } from "./plans.ts";
import { usageByUser, type UsageFilter, type UserUsageTotals } from "./usageReports.ts";
import { startOfDay, startOfMonth, startOfNextDay, startOfNextMonth } from "./zonedTime.ts";

/** Billing as one account sees it, and as admins see accounts: the read side of the billing API. */

export interface QuotaUse {
  limit: number | null;
  used: number;
  resetsAt: number;
}

export interface BillingSummary {
  plan: Plan;
  balance: Balance;
  daily: QuotaUse;
  monthly: QuotaUse;
}

/** A user's plan, balance, and token quota use in the current local day and month. */
export async function billingSummary(
  db: Kysely<Database>,
  user: { userId: string; planId: string | null },
  opts: { defaultPlanId: string; timeZone: string; now?: number },
): Promise<BillingSummary> {
  const now = opts.now ?? Date.now();
  const [plan, balance, today, month] = await Promise.all([
    resolvePlan(db, user.planId, opts.defaultPlanId),
    getBalance(db, user.userId),
    tokensUsedSince(db, user.userId, startOfDay(now, opts.timeZone)),
    tokensUsedSince(db, user.userId, startOfMonth(now, opts.timeZone)),
  ]);
  return {
    plan,
    balance,
    daily: { limit: plan.dailyTokenQuota, used: today, resetsAt: startOfNextDay(now, opts.timeZone) },
    monthly: { limit: plan.monthlyTokenQuota, used: month, resetsAt: startOfNextMonth(now, opts.timeZone) },
  };
}

export interface AccountSpend {
  totals: UserUsageTotals;
  username: string | null;
  planId: string | null;
  balance: Balance | null;
}

/** Per-user totals over a period with each user's name, plan and balance: the admin overview. */
export async function spendByAccount(db: Kysely<Database>, filter: UsageFilter): Promise<AccountSpend[]> {
  const totals = await usageByUser(db, filter);
  const ids = totals.map((t) => t.userId).filter((id): id is string => id !== null);
  const [users, balances] = ids.length
    ? await Promise.all([db.selectFrom("users").select(["id", "username", "plan_id"]).where("id", "in", ids).execute(), Promise.all(ids.map((id) => getBalance(db, id)))])
    : [[], []];
  return totals.map((t) => {
    const user = users.find((u) => u.id === t.userId);
    return { totals: t, username: user?.username ?? null, planId: user?.plan_id ?? null, balance: balances.find((b) => b.userId === t.userId) ?? null };
  });
}

export interface AccountBilling {
  userId: string;
  username: string;
  plan: Plan;
  balance: Balance;
  credits: CreditRecord[];
}

/** One account's plan, balance and credits, for admins; `not_found` for no such user. */
export async function accountBilling(db: Kysely<Database>, userId: string, defaultPlanId: string): Promise<AccountBilling> {
  const user = await db.selectFrom("users").select(["id", "username", "plan_id"]).where("id", "=", userId).executeTakeFirst();
  if (!user) throw new ServiceError("not_found", "User not found", { code: "not_found" });
  const [plan, balance, credits] = await Promise.all([resolvePlan(db, user.plan_id, defaultPlanId), getBalance(db, user.id), listCredits(db, user.id)]);
  return { userId: user.id, username: user.username, plan, balance, credits };
}

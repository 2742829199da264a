import type { Kysely, Selectable } from "kysely";
import type { Database, PlanTable } from "../store/schema.ts";

/**
 * A named plan (free, pro, …): which models its users may call, how many tokens per day and per
 * month, the largest thinking budget, how much of the admission queue one request takes, feature
 * flags, and whether requests are charged to the user's balance at all.
 */
export interface Plan {
  id: string;
  name: string;
  /** When false, usage is metered (ledger rows, costs) but never charged: no balance is needed. */
  billed: boolean;
  /** Model ids this plan may use; null means every model. */
  allowedModels: string[] | null;
  /** Tokens (prompt + completion) per local day / month in the billing time zone; null is unlimited. */
  dailyTokenQuota: number | null;
  monthlyTokenQuota: number | null;
  /** Upper bound on reasoning tokens per request; null is no bound. */
  maxThinkingBudget: number | null;
  /** Share of scheduling turns in the fair admission queue (≥ 1): weight 2 is served twice as often as 1. */
  concurrencyWeight: number;
  /** Feature flags; "search" is reserved for the search feature. */
  features: string[];
  /**
   * Bytes of uploaded documents each user may keep (the `documents` feature); null or absent: the
   * server's `documents.maxStoredBytesPerUser`.
   */
  storedBytesQuota?: number | null;
  /** Web searches (the `search` feature) each user may run per local day; null or absent: unlimited. */
  dailySearchQuota?: number | null;
}

/**
 * The plan seeded by the billing migration: metered, never charged. On a fresh install it has the
 * token quotas below (migration 0410), which admins raise or clear in the billing admin page.
 */
export const FREE_PLAN_ID = "free";
/** The default plan's quotas on a fresh install: a few hundred reasoning answers a day. */
export const FREE_PLAN_DAILY_TOKEN_QUOTA = 500_000;
export const FREE_PLAN_MONTHLY_TOKEN_QUOTA = 5_000_000;

export const PLAN_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** What the admission queue reads: the plan's share of scheduling turns (weighted fair queueing). */
export function planWeight(plan: Pick<Plan, "concurrencyWeight"> | null | undefined): number {
  return plan ? Math.max(1, plan.concurrencyWeight) : 1;
}

export function planAllowsModel(plan: Pick<Plan, "allowedModels">, model: string): boolean {
  return plan.allowedModels === null || plan.allowedModels.includes(model);
}

export function planHasFeature(plan: Plan, feature: string): boolean {
  return plan.features.includes(feature);
}

export async function getPlan(db: Kysely<Database>, id: string): Promise<Plan | undefined> {
  const row = await db.selectFrom("plans").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

export async function listPlans(db: Kysely<Database>): Promise<Plan[]> {
  const rows = await db.selectFrom("plans").selectAll().orderBy("id").execute();
  return rows.map(fromRow);
}

/**
 * The plan a user is on: their own, else the default plan, else the built-in free plan. A plan id
 * that no longer exists (deleted, mistyped in an access code) falls back the same way rather than
 * locking the user out.
 */
export async function resolvePlan(db: Kysely<Database>, planId: string | null, defaultPlanId: string): Promise<Plan> {
  if (planId) {
    const own = await getPlan(db, planId);
    if (own) return own;
  }
  return (await getPlan(db, defaultPlanId)) ?? (await getPlan(db, FREE_PLAN_ID)) ?? builtinFreePlan();
}

/** Creates or replaces a plan; validates it first. */
export async function savePlan(db: Kysely<Database>, plan: Plan, now = Date.now()): Promise<Plan> {
  validatePlan(plan);
  const values = {
    name: plan.name,
    billed: plan.billed ? 1 : 0,
    allowed_models: plan.allowedModels === null ? null : JSON.stringify(plan.allowedModels),
    daily_token_quota: plan.dailyTokenQuota,
    monthly_token_quota: plan.monthlyTokenQuota,
    max_thinking_budget: plan.maxThinkingBudget,
    concurrency_weight: plan.concurrencyWeight,
    features: JSON.stringify(plan.features),
    stored_bytes_quota: plan.storedBytesQuota ?? null,
    daily_search_quota: plan.dailySearchQuota ?? null,
    updated_at: now,
  } as const;
  await db
    .insertInto("plans")
    .values({ id: plan.id, ...values, created_at: now })
    .onConflict((oc) => oc.column("id").doUpdateSet(values))
    .execute();
  return plan;
}

function validatePlan(plan: Plan): void {
  if (!PLAN_ID_PATTERN.test(plan.id)) throw new RangeError(`plan id must be 1–64 lowercase letters, digits, _ or -, got ${JSON.stringify(plan.id)}`);
  if (!plan.name.trim()) throw new RangeError("a plan needs a name");
  for (const [key, value] of [
    ["dailyTokenQuota", plan.dailyTokenQuota],
    ["monthlyTokenQuota", plan.monthlyTokenQuota],
    ["maxThinkingBudget", plan.maxThinkingBudget],
    ["storedBytesQuota", plan.storedBytesQuota ?? null],
    ["dailySearchQuota", plan.dailySearchQuota ?? null],
  ] as const) {
    if (value !== null && (!Number.isSafeInteger(value) || value < 0)) throw new RangeError(`${key} must be a whole non-negative number or null`);
  }
  if (!Number.isInteger(plan.concurrencyWeight) || plan.concurrencyWeight < 1 || plan.concurrencyWeight > 1000) {
    throw new RangeError("concurrencyWeight must be a whole number from 1 to 1000");
  }
}

function builtinFreePlan(): Plan {
  return {
    id: FREE_PLAN_ID,
    name: "Free",
    billed: false,
    allowedModels: null,
    dailyTokenQuota: FREE_PLAN_DAILY_TOKEN_QUOTA,
    monthlyTokenQuota: FREE_PLAN_MONTHLY_TOKEN_QUOTA,
    maxThinkingBudget: null,
    concurrencyWeight: 1,
    features: [],
  };
}

function fromRow(row: Selectable<PlanTable>): Plan {
  return {
    id: row.id,
    name: row.name,
    billed: row.billed === 1,
    allowedModels: row.allowed_models === null ? null : (JSON.parse(row.allowed_models) as string[]),
    dailyTokenQuota: row.daily_token_quota,
    monthlyTokenQuota: row.monthly_token_quota,
    maxThinkingBudget: row.max_thinking_budget,
    concurrencyWeight: row.concurrency_weight,
    features: JSON.parse(row.features) as string[],
    storedBytesQuota: row.stored_bytes_quota,
    dailySearchQuota: row.daily_search_quota ?? null,
  };
}

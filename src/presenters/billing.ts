import type { AccountBilling, AccountSpend, BillingSummary } from "../billing/accounts.ts";
import { availableMicros, totalMicros, type Balance, type CreditRecord } from "../billing/balances.ts";
import type { FeaturePrice } from "../billing/featurePrices.ts";
import type { LedgerRow } from "../billing/ledger.ts";
import { METERS, type LineItem } from "../billing/lineItems.ts";
import { formatMicros } from "../billing/money.ts";
import type { Plan } from "../billing/plans.ts";
import { DEFAULT_PRICE_MODEL, formatClock, quoteAt, type PriceSet, type TokenPrices } from "../billing/pricing.ts";
import type { DailyUsage, UsagePage, UserUsageTotals } from "../billing/usageReports.ts";

/**
 * JSON shapes of the billing API. Money goes out twice: `*_micros` as integers for programs, and
 * a decimal string (never a float) for people. Timestamps are milliseconds since the epoch.
 */

/** GET /v1/user/balance, in DeepSeek's shape (amounts are strings). */
export function presentDeepSeekBalance(input: { currency: string; balance: Balance; billed: boolean }) {
  const { balance } = input;
  return {
    // Unbilled plans and the local operator can always make requests.
    is_available: !input.billed || availableMicros(balance) > 0,
    balance_infos: [
      {
        currency: input.currency,
        total_balance: formatMicros(totalMicros(balance)),
        granted_balance: formatMicros(balance.grantedMicros),
        topped_up_balance: formatMicros(balance.toppedUpMicros),
      },
    ],
  };
}

export function presentBalance(balance: Balance) {
  return {
    total_micros: totalMicros(balance),
    granted_micros: balance.grantedMicros,
    topped_up_micros: balance.toppedUpMicros,
    reserved_micros: balance.reservedMicros,
    available_micros: availableMicros(balance),
    total: formatMicros(totalMicros(balance)),
    available: formatMicros(availableMicros(balance)),
  };
}

export function presentPlan(plan: Plan) {
  return {
    id: plan.id,
    name: plan.name,
    billed: plan.billed,
    allowed_models: plan.allowedModels,
    daily_token_quota: plan.dailyTokenQuota,
    monthly_token_quota: plan.monthlyTokenQuota,
    max_thinking_budget: plan.maxThinkingBudget,
    concurrency_weight: plan.concurrencyWeight,
    features: plan.features,
    stored_bytes_quota: plan.storedBytesQuota ?? null,
    daily_search_quota: plan.dailySearchQuota ?? null,
  };
}

function presentPrices(prices: TokenPrices) {
  return {
    input_cache_hit: formatMicros(prices.inputCacheHit),
    input_cache_miss: formatMicros(prices.inputCacheMiss),
    output: formatMicros(prices.output),
    input_cache_hit_micros: prices.inputCacheHit,
    input_cache_miss_micros: prices.inputCacheMiss,
    output_micros: prices.output,
  };
}

/** Prices are per million tokens. */
export function presentPriceSet(set: PriceSet) {
  return {
    model: set.model,
    ...presentPrices(set.base),
    windows: set.windows.map((w) => ({ start: formatClock(w.start), end: formatClock(w.end), ...presentPrices(w.prices) })),
  };
}

/**
 * GET /api/billing/prices: every price set as users read it (per million tokens), each with the
 * window in force at `at` (null: the base prices apply now), so the page can say "off-peak now"
 * without doing time-zone arithmetic in the browser. The default set ("*") comes last.
 */
export function presentPriceList(sets: readonly PriceSet[], context: { currency: string; timeZone: string; at: number }) {
  const ordered = [...sets].sort((a, b) => Number(a.model === DEFAULT_PRICE_MODEL) - Number(b.model === DEFAULT_PRICE_MODEL) || a.model.localeCompare(b.model));
  return {
    currency: context.currency,
    time_zone: context.timeZone,
    at: context.at,
    prices: ordered.map((set) => ({
      ...presentPriceSet(set),
      default: set.model === DEFAULT_PRICE_MODEL,
      current_window: quoteAt(set, context.at, context.timeZone).window,
    })),
  };
}

/** A ledger line: `unit_price` is for `per` units (1_000_000 tokens, 1 search). */
export function presentLineItem(item: LineItem) {
  return {
    meter: item.meter,
    quantity: item.quantity,
    unit_price_micros: item.unitPriceMicros,
    per: item.per,
    amount_micros: item.amountMicros,
    unit_price: formatMicros(item.unitPriceMicros),
    amount: formatMicros(item.amountMicros),
  };
}

export function presentFeaturePrice(price: FeaturePrice) {
  return {
    meter: price.meter,
    unit_price_micros: price.unitPriceMicros,
    unit_price: formatMicros(price.unitPriceMicros),
    per: price.per,
    source: price.source,
    updated_at: price.updatedAt,
    updated_by: price.updatedBy,
  };
}

/** A feature price as any user reads it: the price, not who set it. */
export function presentPublicFeaturePrice(price: FeaturePrice) {
  return { meter: price.meter, unit_price_micros: price.unitPriceMicros, unit_price: formatMicros(price.unitPriceMicros), per: price.per };
}

/** A ledger row; with `items` (its line items, [] for none) when the caller read them. */
export function presentUsageRow(row: LedgerRow, items?: readonly LineItem[]) {
  return {
    id: row.id,
    user_id: row.user_id,
    api_key_id: row.api_key_id,
    plan_id: row.plan_id,
    model: row.model,
    engine: row.engine,
    status: row.status,
    billed: row.billed === 1,
    started_at: row.started_at,
    ended_at: row.ended_at,
    cache_hit_tokens: row.cache_hit_tokens,
    cache_miss_tokens: row.cache_miss_tokens,
    reasoning_tokens: row.reasoning_tokens,
    answer_tokens: row.answer_tokens,
    total_tokens: row.cache_hit_tokens + row.cache_miss_tokens + row.reasoning_tokens + row.answer_tokens,
    price_window: row.price_window,
    prices: presentPrices({ inputCacheHit: row.price_input_cache_hit, inputCacheMiss: row.price_input_cache_miss, output: row.price_output }),
    cost_micros: row.cost_micros,
    charged_micros: row.charged_micros,
    cost: formatMicros(row.cost_micros),
    charged: formatMicros(row.charged_micros),
    ...(items ? { items: items.map(presentLineItem) } : {}),
  };
}

/** A page of usage: rows with their line items, and the cursor of the next page. */
export function presentUsagePage(page: UsagePage) {
  return { data: page.rows.map((row) => presentUsageRow(row, page.items.get(row.id) ?? [])), next_cursor: page.nextCursor };
}

/** GET /api/billing/summary. */
export function presentSummary(summary: BillingSummary, context: { currency: string; timeZone: string }) {
  const quota = (q: BillingSummary["daily"]) => ({ limit: q.limit, used: q.used, resets_at: q.resetsAt });
  return {
    currency: context.currency,
    time_zone: context.timeZone,
    plan: presentPlan(summary.plan),
    balance: presentBalance(summary.balance),
    quotas: { daily: quota(summary.daily), monthly: quota(summary.monthly) },
  };
}

export function presentAccountSpend(spend: AccountSpend) {
  return presentUserTotals(spend.totals, { username: spend.username, planId: spend.planId, balance: spend.balance });
}

export function presentAccountBilling(account: AccountBilling) {
  return {
    user_id: account.userId,
    username: account.username,
    plan: presentPlan(account.plan),
    balance: presentBalance(account.balance),
    credits: account.credits.map(presentCredit),
  };
}

export function presentDailyUsage(day: DailyUsage) {
  return {
    date: day.date,
    model: day.model,
    requests: day.requests,
    cache_hit_tokens: day.cacheHitTokens,
    cache_miss_tokens: day.cacheMissTokens,
    reasoning_tokens: day.reasoningTokens,
    answer_tokens: day.answerTokens,
    cost_micros: day.costMicros,
    charged_micros: day.chargedMicros,
    cache_saved_micros: day.cacheSavedMicros,
  };
}

export function presentUserTotals(totals: UserUsageTotals, extra: { username: string | null; planId: string | null; balance: Balance | null }) {
  return {
    user_id: totals.userId,
    username: extra.username,
    plan_id: extra.planId,
    requests: totals.requests,
    tokens: totals.tokens,
    cost_micros: totals.costMicros,
    charged_micros: totals.chargedMicros,
    cache_saved_micros: totals.cacheSavedMicros,
    last_request_at: totals.lastRequestAt,
    balance: extra.balance ? presentBalance(extra.balance) : null,
  };
}

export function presentCredit(credit: CreditRecord) {
  return {
    id: credit.id,
    kind: credit.kind,
    amount_micros: credit.amountMicros,
    amount: formatMicros(credit.amountMicros),
    source: credit.source,
    note: credit.note,
    created_by: credit.createdBy,
    created_at: credit.createdAt,
  };
}

export const USAGE_CSV_COLUMNS = [
  "id",
  "started_at",
  "ended_at",
  "status",
  "model",
  "engine",
  "api_key_id",
  "plan_id",
  "cache_hit_tokens",
  "cache_miss_tokens",
  "reasoning_tokens",
  "answer_tokens",
  "price_window",
  "price_input_cache_hit_per_million",
  "price_input_cache_miss_per_million",
  "price_output_per_million",
  "cost",
  "charged",
  "searches",
  "search_cost",
] as const;

/** One CSV line (RFC 4180) for a ledger row and its line items; timestamps as ISO 8601 UTC. */
export function usageCsvLine(row: LedgerRow, items: readonly LineItem[] = []): string {
  const searches = items.filter((i) => i.meter === METERS.search);
  const iso = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString());
  return csvLine([
    row.id,
    iso(row.started_at),
    iso(row.ended_at),
    row.status,
    row.model,
    row.engine,
    row.api_key_id ?? "",
    row.plan_id ?? "",
    String(row.cache_hit_tokens),
    String(row.cache_miss_tokens),
    String(row.reasoning_tokens),
    String(row.answer_tokens),
    row.price_window ?? "",
    formatMicros(row.price_input_cache_hit),
    formatMicros(row.price_input_cache_miss),
    formatMicros(row.price_output),
    formatMicros(row.cost_micros),
    formatMicros(row.charged_micros),
    String(searches.reduce((n, i) => n + i.quantity, 0)),
    formatMicros(searches.reduce((n, i) => n + i.amountMicros, 0)),
  ]);
}

/** A whole CSV document, header first, one line per row as `rows` yields them (streams any length). */
export async function* usageCsv(rows: AsyncIterable<{ row: LedgerRow; items: readonly LineItem[] }>): AsyncGenerator<string> {
  yield csvLine(USAGE_CSV_COLUMNS);
  for await (const { row, items } of rows) yield usageCsvLine(row, items);
}

export function csvLine(fields: readonly string[]): string {
  return `${fields.map(csvField).join(",")}\r\n`;
}

function csvField(value: string): string {
  // A leading = + - @ makes spreadsheets evaluate the cell as a formula: neutralise it (model
  // names come from operators, but a CSV should be safe to open whatever it holds). Numbers from
  // the ledger are never negative, so this never touches an amount.
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

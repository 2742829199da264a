import { sql, type Kysely } from "kysely";
import type { Database, UsageStatus } from "../store/schema.ts";
import { ServiceError } from "../errors.ts";
import { itemsOf, type LedgerRow } from "./ledger.ts";
import type { LineItem } from "./lineItems.ts";
import { localDate } from "./zonedTime.ts";

/** Reading the ledger back: listings (screen and CSV), per-day charts, an admin overview. */

export interface UsageFilter {
  /** Only this user's rows; unset lists every user's (admins). */
  userId?: string | null;
  /** started_at >= from (ms) */
  from?: number;
  /** started_at < to (ms) */
  to?: number;
  model?: string;
  status?: UsageStatus;
  apiKeyId?: string;
}

export interface UsageCursor {
  started_at: number;
  id: string;
}

export const MAX_USAGE_PAGE = 1000;

/** Newest first; page with `before: lastRowOfPreviousPage`. */
export async function listUsage(
  db: Kysely<Database>,
  filter: UsageFilter,
  page: { limit: number; before?: UsageCursor },
): Promise<LedgerRow[]> {
  if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > MAX_USAGE_PAGE) {
    throw new RangeError(`limit must be a whole number from 1 to ${MAX_USAGE_PAGE}`);
  }
  let q = filtered(db, filter).selectAll();
  const before = page.before;
  if (before) {
    q = q.where((eb) =>
      eb.or([eb("started_at", "<", before.started_at), eb.and([eb("started_at", "=", before.started_at), eb("id", "<", before.id)])]),
    );
  }
  return q.orderBy("started_at", "desc").orderBy("id", "desc").limit(page.limit).execute();
}

export interface UsagePage {
  rows: LedgerRow[];
  /** Each row's line items (a row without any — open, interrupted, nothing used — is absent). */
  items: Map<string, LineItem[]>;
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

/** One page of rows with their items; `cursor` is an opaque next_cursor from the previous page. */
export async function usagePage(db: Kysely<Database>, filter: UsageFilter, page: { limit: number; cursor?: string }): Promise<UsagePage> {
  if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > MAX_USAGE_PAGE) {
    throw new ServiceError("invalid_request", `limit must be a whole number from 1 to ${MAX_USAGE_PAGE}`, { code: "invalid_parameter", param: "limit" });
  }
  const fetched = await listUsage(db, filter, { limit: page.limit + 1, ...(page.cursor ? { before: decodeUsageCursor(page.cursor) } : {}) });
  const more = fetched.length > page.limit;
  const rows = more ? fetched.slice(0, page.limit) : fetched;
  return { rows, items: await itemsOf(db, rows.map((r) => r.id)), nextCursor: more ? encodeUsageCursor(rows[rows.length - 1]!) : null };
}

/** Every row of `filter`, newest first, page by page (for CSV export of any length). */
/** Every row of `filter` with its line items, a page of rows (and one query for their items) at a time. */
export async function* allUsageWithItems(db: Kysely<Database>, filter: UsageFilter): AsyncGenerator<{ row: LedgerRow; items: LineItem[] }> {
  let before: UsageCursor | undefined;
  for (;;) {
    const rows = await listUsage(db, filter, { limit: MAX_USAGE_PAGE, ...(before ? { before } : {}) });
    const items = await itemsOf(db, rows.map((r) => r.id));
    for (const row of rows) yield { row, items: items.get(row.id) ?? [] };
    if (rows.length < MAX_USAGE_PAGE) return;
    before = rows[rows.length - 1]!;
  }
}

export function encodeUsageCursor(row: UsageCursor): string {
  return Buffer.from(`${row.started_at}.${row.id}`).toString("base64url");
}

export function decodeUsageCursor(cursor: string): UsageCursor {
  const match = /^(\d{1,16})\.([0-9a-f-]{1,64})$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!match) throw new ServiceError("invalid_request", "Invalid cursor: pass next_cursor from the previous page.", { code: "invalid_parameter", param: "cursor" });
  return { started_at: Number(match[1]), id: match[2]! };
}

export interface DailyUsage {
  /** Local date in the billing time zone, YYYY-MM-DD. */
  date: string;
  model: string;
  requests: number;
  cacheHitTokens: number;
  cacheMissTokens: number;
  reasoningTokens: number;
  answerTokens: number;
  costMicros: number;
  chargedMicros: number;
  /** What the cache hits would have cost more at the cache-miss price. */
  cacheSavedMicros: number;
}

// Every time zone in use today is offset from UTC by a multiple of 15 minutes, so 15-minute
// buckets summed in SQL can be assigned to local days exactly in JS.
const BUCKET_MS = 15 * 60 * 1000;

/** Tokens, cost and cache savings per local day and model: what the usage chart draws. */
export async function dailyUsage(db: Kysely<Database>, filter: UsageFilter, timeZone: string): Promise<DailyUsage[]> {
  const buckets = await filtered(db, filter)
    .select((eb) => [
      sql<number>`started_at / ${sql.lit(BUCKET_MS)}`.as("bucket"),
      "model",
      eb.fn.countAll<number>().as("requests"),
      eb.fn.sum<number>("cache_hit_tokens").as("hit"),
      eb.fn.sum<number>("cache_miss_tokens").as("miss"),
      eb.fn.sum<number>("reasoning_tokens").as("reasoning"),
      eb.fn.sum<number>("answer_tokens").as("answer"),
      eb.fn.sum<number>("cost_micros").as("cost"),
      eb.fn.sum<number>("charged_micros").as("charged"),
      sql<number>`sum(cache_hit_tokens * (price_input_cache_miss - price_input_cache_hit))`.as("saved"),
    ])
    // A literal, not a parameter: PostgreSQL must see the very same expression in SELECT and GROUP BY.
    .groupBy([sql`started_at / ${sql.lit(BUCKET_MS)}`, "model"])
    .execute();
  const days = new Map<string, DailyUsage & { savedExact: number }>();
  for (const b of buckets) {
    const date = localDate(Number(b.bucket) * BUCKET_MS, timeZone);
    const key = `${date}\u0000${b.model}`;
    let day = days.get(key);
    if (!day) {
      day = { date, model: b.model, requests: 0, cacheHitTokens: 0, cacheMissTokens: 0, reasoningTokens: 0, answerTokens: 0, costMicros: 0, chargedMicros: 0, cacheSavedMicros: 0, savedExact: 0 };
      days.set(key, day);
    }
    day.requests += Number(b.requests);
    day.cacheHitTokens += Number(b.hit);
    day.cacheMissTokens += Number(b.miss);
    day.reasoningTokens += Number(b.reasoning);
    day.answerTokens += Number(b.answer);
    day.costMicros += Number(b.cost);
    day.chargedMicros += Number(b.charged);
    day.savedExact += Number(b.saved);
  }
  return [...days.values()]
    .map(({ savedExact, ...day }) => ({ ...day, cacheSavedMicros: Math.floor(savedExact / 1_000_000) }))
    .sort((a, b) => (a.date === b.date ? a.model.localeCompare(b.model) : a.date.localeCompare(b.date)));
}

export interface UserUsageTotals {
  userId: string | null;
  requests: number;
  tokens: number;
  costMicros: number;
  chargedMicros: number;
  cacheSavedMicros: number;
  lastRequestAt: number | null;
}

/** Per-user totals over a period, biggest spenders first: the admin overview. */
export async function usageByUser(db: Kysely<Database>, filter: UsageFilter, limit = 100): Promise<UserUsageTotals[]> {
  const rows = await filtered(db, filter)
    .select((eb) => [
      "user_id",
      eb.fn.countAll<number>().as("requests"),
      sql<number>`sum(cache_hit_tokens + cache_miss_tokens + reasoning_tokens + answer_tokens)`.as("tokens"),
      eb.fn.sum<number>("cost_micros").as("cost"),
      eb.fn.sum<number>("charged_micros").as("charged"),
      sql<number>`sum(cache_hit_tokens * (price_input_cache_miss - price_input_cache_hit))`.as("saved"),
      eb.fn.max("started_at").as("last"),
    ])
    .groupBy("user_id")
    .orderBy(sql`sum(cost_micros)`, "desc")
    .orderBy("user_id")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    userId: r.user_id,
    requests: Number(r.requests),
    tokens: Number(r.tokens),
    costMicros: Number(r.cost),
    chargedMicros: Number(r.charged),
    cacheSavedMicros: Math.floor(Number(r.saved) / 1_000_000),
    lastRequestAt: r.last === null ? null : Number(r.last),
  }));
}

function filtered(db: Kysely<Database>, filter: UsageFilter) {
  let q = db.selectFrom("usage_ledger");
  if (filter.userId !== undefined) q = filter.userId === null ? q.where("user_id", "is", null) : q.where("user_id", "=", filter.userId);
  if (filter.from !== undefined) q = q.where("started_at", ">=", filter.from);
  if (filter.to !== undefined) q = q.where("started_at", "<", filter.to);
  if (filter.model !== undefined) q = q.where("model", "=", filter.model);
  if (filter.status !== undefined) q = q.where("status", "=", filter.status);
  if (filter.apiKeyId !== undefined) q = q.where("api_key_id", "=", filter.apiKeyId);
  return q;
}

import type { FastifyReply, FastifyRequest } from "fastify";
import { Readable } from "node:stream";
import { z } from "zod";
import { ANONYMOUS, type Actor, type UserActor } from "../../auth/actor.ts";
import { USAGE_STATUSES } from "../../billing/ledger.ts";
import { METER_PATTERN } from "../../billing/lineItems.ts";
import { parseAmount } from "../../billing/money.ts";
import { parseClock } from "../../billing/pricing.ts";
import type { FeaturePriceDefaults } from "../../billing/featurePrices.ts";
import { usageCsv } from "../../presenters/billing.ts";
import { allUsageWithItems, MAX_USAGE_PAGE, type UsageFilter } from "../../billing/usageReports.ts";
import { instantOf } from "../../billing/zonedTime.ts";
import type { BillingAdmin } from "../../commands/billing.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import type { Store } from "../../store/database.ts";

export interface BillingRoutesDeps {
  store: Store;
  currency: string;
  timeZone: string;
  defaultPlanId: string;
  /** Configured feature prices (config `billing`, see featurePriceDefaults), shown beside stored ones. */
  featurePrices?: FeaturePriceDefaults;
}

/**
 * What the billing routes share: request schemas (money in as exact decimal strings, times of day,
 * usage filters) and who is asking (policy `billing.viewOwn` / `billing.manage`).
 */

export const amountSchema = z.string().max(32).transform((text, ctx) => {
  try {
    return parseAmount(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const pricesSchema = { input_cache_hit: amountSchema, input_cache_miss: amountSchema, output: amountSchema };
const clockSchema = z.string().transform((text, ctx) => {
  try {
    return parseClock(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const windowSchema = z.union([
  z.object({ start: clockSchema, end: clockSchema, discount_percent: z.number().int().min(0).max(100) }).strict(),
  z.object({ start: clockSchema, end: clockSchema, ...pricesSchema }).strict(),
]);
export const priceSetBody = z.object({ ...pricesSchema, windows: z.array(windowSchema).max(24).default([]) }).strict();
export const modelParam = z.object({ model: z.string().min(1).max(256) });
export const idParam = z.object({ id: z.string().min(1).max(64) });
export const meterParam = z.object({ meter: z.string().regex(METER_PATTERN, "a meter is 1–64 lowercase letters, digits or _") });
const quota = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().default(null);
export const planBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    billed: z.boolean().default(false),
    allowed_models: z.array(z.string().min(1).max(256)).max(1000).nullable().default(null),
    daily_token_quota: quota,
    monthly_token_quota: quota,
    max_thinking_budget: z.number().int().min(0).max(1_048_576).nullable().default(null),
    concurrency_weight: z.number().int().min(1).max(1000).default(1),
    features: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/)).max(32).default([]),
    /** Bytes of documents each user may keep; null: the server's documents.maxStoredBytesPerUser. */
    stored_bytes_quota: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().default(null),
    /** Web searches each user may run per day; null: unlimited. */
    daily_search_quota: quota,
  })
  .strict();
export const setPlanBody = z.object({ plan_id: z.string().min(1).max(64) }).strict();
export const creditBody = z
  .object({ amount: amountSchema, kind: z.enum(["granted", "topped_up"]).default("granted"), note: z.string().max(500).nullable().optional() })
  .strict();
/** A feature price: `price` (decimal) for every `per` units (default 1: a search). */
export const featurePriceBody = z.object({ price: amountSchema, per: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(1) }).strict();

/** from/to: milliseconds, an ISO 8601 instant, or a date YYYY-MM-DD (local midnight in the billing time zone). */
function timeParam(timeZone: string) {
  return z
    .union([z.coerce.number().int().min(0), z.string()])
    .transform((value, ctx) => {
      if (typeof value === "number") return value;
      const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
      const ms = date ? instantOf({ year: +date[1]!, month: +date[2]!, day: +date[3]!, hour: 0, minute: 0, second: 0 }, timeZone) : Date.parse(value);
      if (!Number.isFinite(ms)) {
        ctx.addIssue({ code: "custom", message: "use milliseconds, an ISO 8601 time or a date YYYY-MM-DD" });
        return z.NEVER;
      }
      return ms;
    })
    .optional();
}

/** Usage query schemas in the billing time zone: a filter, a page of it, and the admin's versions (?user_id). */
export function usageQueries(timeZone: string) {
  const time = timeParam(timeZone);
  const filter = z.object({
    from: time,
    to: time,
    model: z.string().min(1).max(256).optional(),
    status: z.enum(USAGE_STATUSES as [string, ...string[]]).optional(),
    api_key_id: z.string().min(1).max(64).optional(),
  });
  const list = filter.extend({ limit: z.coerce.number().int().min(1).max(MAX_USAGE_PAGE).default(50), cursor: z.string().max(200).optional() });
  const userId = z.string().min(1).max(64).optional();
  return { filter, list, adminFilter: filter.extend({ user_id: userId }), adminList: list.extend({ user_id: userId }) };
}

type FilterQuery = z.infer<ReturnType<typeof usageQueries>["filter"]>;

/** A parsed usage query as a filter; `userId` undefined lists every user's rows (admins). */
export function toUsageFilter(q: FilterQuery, userId: string | null | undefined): UsageFilter {
  return {
    ...(userId !== undefined ? { userId } : {}),
    ...(q.from !== undefined ? { from: q.from } : {}),
    ...(q.to !== undefined ? { to: q.to } : {}),
    ...(q.model !== undefined ? { model: q.model } : {}),
    ...(q.status !== undefined ? { status: q.status as UsageFilter["status"] } : {}),
    ...(q.api_key_id !== undefined ? { apiKeyId: q.api_key_id } : {}),
  };
}

/** Routes without an auth hook in front (tests of the bare server) see an anonymous caller. */
function actorOf(request: FastifyRequest): Actor {
  return request.actor ?? ANONYMOUS;
}

/** The signed-in account asking about its own billing (policy billing.viewOwn). */
export function billingAccount(request: FastifyRequest): UserActor {
  const actor = actorOf(request);
  authorize(actor, "billing.viewOwn");
  return requireUser(actor);
}

/** Any signed-in account reading the price list (policy billing.viewPrices). */
export function priceListReader(request: FastifyRequest): void {
  authorize(actorOf(request), "billing.viewPrices");
}

/** The admin changing billing (policy billing.manage), as the commands record them. */
export function billingAdmin(request: FastifyRequest): BillingAdmin {
  const actor = actorOf(request);
  authorize(actor, "billing.manage");
  return { userId: actor.kind === "user" ? actor.userId : null, ip: request.ip };
}

export function sendCsv(reply: FastifyReply, body: Readable) {
  return reply.type("text/csv; charset=utf-8").header("content-disposition", 'attachment; filename="usage.csv"').send(body);
}

/** Every row of `filter` as one CSV document, read page by page while it is sent. */
export function usageCsvStream(store: Store, filter: UsageFilter): Readable {
  return Readable.from(usageCsv(allUsageWithItems(store.db, filter)));
}

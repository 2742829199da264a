import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { ANONYMOUS, type Actor } from "../../auth/actor.ts";
import { writeAudit } from "../../auth/audit.ts";
import { findUserById, updateUser } from "../../auth/users.ts";
import { addCredit, getBalance, listCredits } from "../../billing/balances.ts";
import { tokensUsedSince, USAGE_STATUSES } from "../../billing/ledger.ts";
import { parseAmount } from "../../billing/money.ts";
import { getPlan, listPlans, PLAN_ID_PATTERN, resolvePlan, savePlan, type Plan } from "../../billing/plans.ts";
import {
  presentBalance,
  presentCredit,
  presentDailyUsage,
  presentPlan,
  presentPriceSet,
  presentUsageRow,
  presentUserTotals,
  USAGE_CSV_COLUMNS,
  csvLine,
  usageCsvLine,
} from "../../billing/presenters.ts";
import { deletePriceSet, listPriceSets, savePriceSet } from "../../billing/priceBook.ts";
import { discounted, parseClock, type PriceSet, type TokenPrices } from "../../billing/pricing.ts";
import { dailyUsage, listUsage, MAX_USAGE_PAGE, usageByUser, type UsageCursor, type UsageFilter } from "../../billing/usageReports.ts";
import { instantOf, startOfDay, startOfMonth, startOfNextDay, startOfNextMonth } from "../../billing/zonedTime.ts";
import { authorize } from "../../policies/index.ts";
import type { Store } from "../../store/database.ts";
import { ApiError } from "../errors.ts";

/**
 * The web app's billing API. Money goes in as decimal strings ("2.19"), parsed exactly; it comes
 * out as integer `*_micros` plus decimal strings. Prices are per million tokens.
 *
 * Signed-in users, about themselves:
 *   GET  /api/billing/summary                 plan, balance, quota use and reset times
 *   GET  /api/billing/usage                   ledger rows, newest first: ?from&to&model&status&api_key_id&limit&cursor
 *   GET  /api/billing/usage.csv               the same rows as CSV (all pages)
 *   GET  /api/billing/usage/daily             tokens, cost and cache savings per local day and model: ?from&to&model
 * Admins:
 *   GET  /api/admin/billing/overview          per-user totals with balances: ?from&to
 *   GET  /api/admin/billing/usage(.csv)       every user's rows; also ?user_id
 *   GET  /api/admin/billing/prices            every price set ("*" is the default for unpriced models)
 *   PUT  /api/admin/billing/prices/:model     {input_cache_hit, input_cache_miss, output, windows: [{start, end, discount_percent | prices…}]}
 *   DELETE /api/admin/billing/prices/:model
 *   GET  /api/admin/billing/plans
 *   PUT  /api/admin/billing/plans/:id         {name, billed, allowed_models, daily_token_quota, monthly_token_quota, max_thinking_budget, concurrency_weight, features}
 *   GET  /api/admin/billing/users/:id         plan, balance, credits
 *   PUT  /api/admin/billing/users/:id/plan    {plan_id}
 *   POST /api/admin/billing/users/:id/credits {amount, kind: granted|topped_up, note}
 * from/to: milliseconds, an ISO 8601 instant, or a date YYYY-MM-DD (local midnight in the billing time zone).
 */
export interface BillingRoutesDeps {
  store: Store;
  currency: string;
  timeZone: string;
  defaultPlanId: string;
}

const amountSchema = z.string().max(32).transform((text, ctx) => {
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
const priceSetBody = z.object({ ...pricesSchema, windows: z.array(windowSchema).max(24).default([]) }).strict();
const modelParam = z.object({ model: z.string().min(1).max(256) });
const idParam = z.object({ id: z.string().min(1).max(64) });
const quota = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().default(null);
const planBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    billed: z.boolean().default(false),
    allowed_models: z.array(z.string().min(1).max(256)).max(1000).nullable().default(null),
    daily_token_quota: quota,
    monthly_token_quota: quota,
    max_thinking_budget: z.number().int().min(0).max(1_048_576).nullable().default(null),
    concurrency_weight: z.number().int().min(1).max(1000).default(1),
    features: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,31}$/)).max(32).default([]),
  })
  .strict();
const setPlanBody = z.object({ plan_id: z.string().min(1).max(64) }).strict();
const creditBody = z
  .object({ amount: amountSchema, kind: z.enum(["granted", "topped_up"]).default("granted"), note: z.string().max(500).nullable().optional() })
  .strict();

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

export function registerBillingRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;
  const time = timeParam(deps.timeZone);
  const filterQuery = z.object({
    from: time,
    to: time,
    model: z.string().min(1).max(256).optional(),
    status: z.enum(USAGE_STATUSES as [string, ...string[]]).optional(),
    api_key_id: z.string().min(1).max(64).optional(),
  });
  const listQuery = filterQuery.extend({
    limit: z.coerce.number().int().min(1).max(MAX_USAGE_PAGE).default(50),
    cursor: z.string().max(200).optional(),
  });
  const adminListQuery = listQuery.extend({ user_id: z.string().min(1).max(64).optional() });
  const adminFilterQuery = filterQuery.extend({ user_id: z.string().min(1).max(64).optional() });

  const own = (request: FastifyRequest) => {
    const actor = actorOf(request);
    authorize(actor, "billing.viewOwn");
    if (actor.kind !== "user") throw new ApiError(403, "Billing is for signed-in accounts.", "forbidden");
    return actor;
  };
  const admin = (request: FastifyRequest) => {
    const actor = actorOf(request);
    authorize(actor, "billing.manage");
    return actor.kind === "user" ? actor.userId : null;
  };
  const toFilter = (q: z.infer<typeof filterQuery>, userId: string | null | undefined): UsageFilter => ({
    ...(userId !== undefined ? { userId } : {}),
    ...(q.from !== undefined ? { from: q.from } : {}),
    ...(q.to !== undefined ? { to: q.to } : {}),
    ...(q.model !== undefined ? { model: q.model } : {}),
    ...(q.status !== undefined ? { status: q.status as UsageFilter["status"] } : {}),
    ...(q.api_key_id !== undefined ? { apiKeyId: q.api_key_id } : {}),
  });
  const page = async (filter: UsageFilter, q: z.infer<typeof listQuery>) => {
    const rows = await listUsage(db, filter, { limit: q.limit + 1, ...(q.cursor ? { before: decodeCursor(q.cursor) } : {}) }).catch(rethrowRange);
    const more = rows.length > q.limit;
    const shown = more ? rows.slice(0, q.limit) : rows;
    return { data: shown.map(presentUsageRow), next_cursor: more ? encodeCursor(shown[shown.length - 1]!) : null };
  };
  const csv = (filter: UsageFilter) => Readable.from(usageCsv(db, filter));

  app.get("/api/billing/summary", async (request) => {
    const actor = own(request);
    const now = Date.now();
    const [plan, balance, today, month] = await Promise.all([
      resolvePlan(db, actor.planId, deps.defaultPlanId),
      getBalance(db, actor.userId),
      tokensUsedSince(db, actor.userId, startOfDay(now, deps.timeZone)),
      tokensUsedSince(db, actor.userId, startOfMonth(now, deps.timeZone)),
    ]);
    return {
      currency: deps.currency,
      time_zone: deps.timeZone,
      plan: presentPlan(plan),
      balance: presentBalance(balance),
      quotas: {
        daily: { limit: plan.dailyTokenQuota, used: today, resets_at: startOfNextDay(now, deps.timeZone) },
        monthly: { limit: plan.monthlyTokenQuota, used: month, resets_at: startOfNextMonth(now, deps.timeZone) },
      },
    };
  });

  app.get("/api/billing/usage", async (request) => {
    const actor = own(request);
    const q = listQuery.parse(request.query);
    return page(toFilter(q, actor.userId), q);
  });

  app.get("/api/billing/usage.csv", async (request, reply) => {
    const actor = own(request);
    const filter = toFilter(filterQuery.parse(request.query), actor.userId);
    return sendCsv(reply, csv(filter));
  });

  app.get("/api/billing/usage/daily", async (request) => {
    const actor = own(request);
    const q = filterQuery.parse(request.query);
    const days = await dailyUsage(db, toFilter(q, actor.userId), deps.timeZone);
    return { currency: deps.currency, time_zone: deps.timeZone, days: days.map(presentDailyUsage) };
  });

  app.get("/api/admin/billing/overview", async (request) => {
    admin(request);
    const q = filterQuery.parse(request.query);
    const totals = await usageByUser(db, toFilter(q, undefined));
    const ids = totals.map((t) => t.userId).filter((id): id is string => id !== null);
    const [users, balances] = ids.length
      ? await Promise.all([
          db.selectFrom("users").select(["id", "username", "plan_id"]).where("id", "in", ids).execute(),
          Promise.all(ids.map((id) => getBalance(db, id))),
        ])
      : [[], []];
    return {
      currency: deps.currency,
      users: totals.map((t) => {
        const user = users.find((u) => u.id === t.userId);
        return presentUserTotals(t, {
          username: user?.username ?? null,
          planId: user?.plan_id ?? null,
          balance: balances.find((b) => b.userId === t.userId) ?? null,
        });
      }),
    };
  });

  app.get("/api/admin/billing/usage", async (request) => {
    admin(request);
    const q = adminListQuery.parse(request.query);
    return page(toFilter(q, q.user_id), q);
  });

  app.get("/api/admin/billing/usage.csv", async (request, reply) => {
    admin(request);
    const q = adminFilterQuery.parse(request.query);
    return sendCsv(reply, csv(toFilter(q, q.user_id)));
  });

  app.get("/api/admin/billing/prices", async (request) => {
    admin(request);
    return { currency: deps.currency, time_zone: deps.timeZone, prices: (await listPriceSets(db)).map(presentPriceSet) };
  });

  app.put("/api/admin/billing/prices/:model", async (request) => {
    const adminId = admin(request);
    const { model } = modelParam.parse(request.params);
    const body = priceSetBody.parse(request.body);
    const base: TokenPrices = { inputCacheHit: body.input_cache_hit, inputCacheMiss: body.input_cache_miss, output: body.output };
    const set: PriceSet = {
      model,
      base,
      windows: body.windows.map((w) => ({
        start: w.start,
        end: w.end,
        prices: "discount_percent" in w ? discounted(base, w.discount_percent) : { inputCacheHit: w.input_cache_hit, inputCacheMiss: w.input_cache_miss, output: w.output },
      })),
    };
    await db
      .transaction()
      .execute(async (trx) => {
        await savePriceSet(trx, set, adminId);
        await writeAudit(trx, { actorUserId: adminId, action: "billing.price.set", targetType: "model", targetId: model, details: presentPriceSet(set), ip: request.ip });
      })
      .catch(rethrowRange);
    return presentPriceSet(set);
  });

  app.delete("/api/admin/billing/prices/:model", async (request, reply) => {
    const adminId = admin(request);
    const { model } = modelParam.parse(request.params);
    const deleted = await db.transaction().execute(async (trx) => {
      const gone = await deletePriceSet(trx, model);
      if (gone) await writeAudit(trx, { actorUserId: adminId, action: "billing.price.delete", targetType: "model", targetId: model, ip: request.ip });
      return gone;
    });
    if (!deleted) throw new ApiError(404, `No prices are set for '${model}'.`, "not_found", "model");
    return reply.status(204).send();
  });

  app.get("/api/admin/billing/plans", async (request) => {
    admin(request);
    return { plans: (await listPlans(db)).map(presentPlan) };
  });

  app.put("/api/admin/billing/plans/:id", async (request) => {
    const adminId = admin(request);
    const { id } = idParam.parse(request.params);
    if (!PLAN_ID_PATTERN.test(id)) throw new ApiError(400, "A plan id is 1–64 lowercase letters, digits, '_' or '-'.", "invalid_parameter", "id");
    const body = planBody.parse(request.body);
    const plan: Plan = {
      id,
      name: body.name,
      billed: body.billed,
      allowedModels: body.allowed_models,
      dailyTokenQuota: body.daily_token_quota,
      monthlyTokenQuota: body.monthly_token_quota,
      maxThinkingBudget: body.max_thinking_budget,
      concurrencyWeight: body.concurrency_weight,
      features: body.features,
    };
    await db
      .transaction()
      .execute(async (trx) => {
        await savePlan(trx, plan);
        await writeAudit(trx, { actorUserId: adminId, action: "billing.plan.set", targetType: "plan", targetId: id, details: presentPlan(plan), ip: request.ip });
      })
      .catch(rethrowRange);
    return presentPlan(plan);
  });

  app.get("/api/admin/billing/users/:id", async (request) => {
    admin(request);
    const user = await existingUser(idParam.parse(request.params).id);
    const [plan, balance, credits] = await Promise.all([
      resolvePlan(db, user.plan_id, deps.defaultPlanId),
      getBalance(db, user.id),
      listCredits(db, user.id),
    ]);
    return { user_id: user.id, username: user.username, plan: presentPlan(plan), balance: presentBalance(balance), credits: credits.map(presentCredit) };
  });

  app.put("/api/admin/billing/users/:id/plan", async (request) => {
    const adminId = admin(request);
    const user = await existingUser(idParam.parse(request.params).id);
    const { plan_id } = setPlanBody.parse(request.body);
    const plan = await getPlan(db, plan_id);
    if (!plan) throw new ApiError(400, `There is no plan '${plan_id}'.`, "invalid_parameter", "plan_id");
    await db.transaction().execute(async (trx) => {
      await updateUser(trx, user.id, { plan_id });
      await writeAudit(trx, { actorUserId: adminId, action: "user.plan", targetType: "user", targetId: user.id, details: { from: user.plan_id, to: plan_id }, ip: request.ip });
    });
    return { user_id: user.id, plan: presentPlan(plan) };
  });

  app.post("/api/admin/billing/users/:id/credits", async (request, reply) => {
    const adminId = admin(request);
    const user = await existingUser(idParam.parse(request.params).id);
    const body = creditBody.parse(request.body);
    if (body.amount === 0) throw new ApiError(400, "A credit must be more than zero.", "invalid_parameter", "amount");
    const balance = await db.transaction().execute(async (trx) => {
      const after = await addCredit(trx, { userId: user.id, kind: body.kind, amountMicros: body.amount, source: "admin", note: body.note ?? null, createdBy: adminId });
      await writeAudit(trx, {
        actorUserId: adminId,
        action: "billing.credit.add",
        targetType: "user",
        targetId: user.id,
        details: { kind: body.kind, amount_micros: body.amount },
        ip: request.ip,
      });
      return after;
    });
    return reply.status(201).send({ user_id: user.id, balance: presentBalance(balance) });
  });

  async function existingUser(id: string) {
    const user = await findUserById(db, id);
    if (!user) throw new ApiError(404, "User not found", "not_found");
    return user;
  }
}

/** Routes without an auth hook in front (tests of the bare server) see an anonymous caller. */
function actorOf(request: FastifyRequest): Actor {
  return request.actor ?? ANONYMOUS;
}

async function* usageCsv(db: Store["db"], filter: UsageFilter): AsyncGenerator<string> {
  yield csvLine(USAGE_CSV_COLUMNS);
  let before: UsageCursor | undefined;
  for (;;) {
    const rows = await listUsage(db, filter, { limit: MAX_USAGE_PAGE, ...(before ? { before } : {}) });
    for (const row of rows) yield usageCsvLine(row);
    if (rows.length < MAX_USAGE_PAGE) return;
    before = rows[rows.length - 1]!;
  }
}

function sendCsv(reply: import("fastify").FastifyReply, body: Readable) {
  return reply.type("text/csv; charset=utf-8").header("content-disposition", 'attachment; filename="usage.csv"').send(body);
}

function encodeCursor(row: UsageCursor): string {
  return Buffer.from(`${row.started_at}.${row.id}`).toString("base64url");
}

function decodeCursor(cursor: string): UsageCursor {
  const match = /^(\d{1,16})\.([0-9a-f-]{1,64})$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!match) throw new ApiError(400, "Invalid cursor: pass next_cursor from the previous page.", "invalid_parameter", "cursor");
  return { started_at: Number(match[1]), id: match[2]! };
}

/** A validation error from the billing core (RangeError) is the caller's mistake: 400. */
function rethrowRange(error: unknown): never {
  if (error instanceof RangeError) throw new ApiError(400, error.message, "invalid_parameter");
  throw error;
}

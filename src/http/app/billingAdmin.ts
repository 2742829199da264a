import type { FastifyInstance } from "fastify";
import { accountBilling, spendByAccount } from "../../billing/accounts.ts";
import { listFeaturePrices } from "../../billing/featurePrices.ts";
import { listPlans, type Plan } from "../../billing/plans.ts";
import {
  presentAccountBilling,
  presentAccountSpend,
  presentBalance,
  presentDailyUsage,
  presentFeaturePrice,
  presentPlan,
  presentPriceSet,
  presentUsagePage,
} from "../../presenters/billing.ts";
import { listPriceSets } from "../../billing/priceBook.ts";
import { discounted, type PriceSet, type TokenPrices } from "../../billing/pricing.ts";
import { dailyUsage, usagePage } from "../../billing/usageReports.ts";
import { creditUser, putPlan, removeFeaturePrice, removeModelPrices, setFeaturePrice, setModelPrices, setUserPlan } from "../../commands/billing.ts";
import {
  billingAdmin,
  type BillingRoutesDeps,
  creditBody,
  featurePriceBody,
  idParam,
  meterParam,
  modelParam,
  planBody,
  priceSetBody,
  sendCsv,
  setPlanBody,
  toUsageFilter,
  usageCsvStream,
  usageQueries,
} from "./billingParams.ts";

/** Admins' billing routes (policy billing.manage); the list of paths is in billing.ts. */

export function registerAdminUsageRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;
  const q = usageQueries(deps.timeZone);

  app.get("/api/admin/billing/overview", async (request) => {
    billingAdmin(request);
    const spend = await spendByAccount(db, toUsageFilter(q.filter.parse(request.query), undefined));
    return { currency: deps.currency, users: spend.map(presentAccountSpend) };
  });

  app.get("/api/admin/billing/usage/daily", async (request) => {
    billingAdmin(request);
    const query = q.adminFilter.parse(request.query);
    const days = await dailyUsage(db, toUsageFilter(query, query.user_id), deps.timeZone);
    return { currency: deps.currency, time_zone: deps.timeZone, days: days.map(presentDailyUsage) };
  });

  app.get("/api/admin/billing/usage", async (request) => {
    billingAdmin(request);
    const query = q.adminList.parse(request.query);
    return presentUsagePage(await usagePage(db, toUsageFilter(query, query.user_id), { limit: query.limit, ...(query.cursor ? { cursor: query.cursor } : {}) }));
  });

  app.get("/api/admin/billing/usage.csv", async (request, reply) => {
    billingAdmin(request);
    const query = q.adminFilter.parse(request.query);
    return sendCsv(reply, usageCsvStream(deps.store, toUsageFilter(query, query.user_id)));
  });
}

export function registerPriceRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;

  app.get("/api/admin/billing/prices", async (request) => {
    billingAdmin(request);
    return { currency: deps.currency, time_zone: deps.timeZone, prices: (await listPriceSets(db)).map(presentPriceSet) };
  });

  app.put("/api/admin/billing/prices/:model", async (request) => {
    const by = billingAdmin(request);
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
    return presentPriceSet(await setModelPrices(db, by, set));
  });

  app.delete("/api/admin/billing/prices/:model", async (request, reply) => {
    const by = billingAdmin(request);
    await removeModelPrices(db, by, modelParam.parse(request.params).model);
    return reply.status(204).send();
  });
}

export function registerFeaturePriceRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;

  app.get("/api/admin/billing/feature-prices", async (request) => {
    billingAdmin(request);
    return { currency: deps.currency, prices: (await listFeaturePrices(db, deps.featurePrices)).map(presentFeaturePrice) };
  });

  app.put("/api/admin/billing/feature-prices/:meter", async (request) => {
    const by = billingAdmin(request);
    const { meter } = meterParam.parse(request.params);
    const body = featurePriceBody.parse(request.body);
    return presentFeaturePrice(await setFeaturePrice(db, by, meter, { unitPriceMicros: body.price, per: body.per }));
  });

  app.delete("/api/admin/billing/feature-prices/:meter", async (request, reply) => {
    const by = billingAdmin(request);
    await removeFeaturePrice(db, by, meterParam.parse(request.params).meter);
    return reply.status(204).send();
  });
}

export function registerPlanRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;

  app.get("/api/admin/billing/plans", async (request) => {
    billingAdmin(request);
    return { plans: (await listPlans(db)).map(presentPlan) };
  });

  app.put("/api/admin/billing/plans/:id", async (request) => {
    const by = billingAdmin(request);
    const { id } = idParam.parse(request.params);
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
      storedBytesQuota: body.stored_bytes_quota,
      dailySearchQuota: body.daily_search_quota,
    };
    return presentPlan(await putPlan(db, by, plan));
  });
}

export function registerAccountBillingRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;

  app.get("/api/admin/billing/users/:id", async (request) => {
    billingAdmin(request);
    return presentAccountBilling(await accountBilling(db, idParam.parse(request.params).id, deps.defaultPlanId));
  });

  app.put("/api/admin/billing/users/:id/plan", async (request) => {
    const by = billingAdmin(request);
    const { id } = idParam.parse(request.params);
    const { plan_id } = setPlanBody.parse(request.body);
    const { user, plan } = await setUserPlan(db, by, id, plan_id);
    return { user_id: user.id, plan: presentPlan(plan) };
  });

  app.post("/api/admin/billing/users/:id/credits", async (request, reply) => {
    const by = billingAdmin(request);
    const { id } = idParam.parse(request.params);
    const body = creditBody.parse(request.body);
    const balance = await creditUser(db, by, { userId: id, kind: body.kind, amountMicros: body.amount, note: body.note ?? null });
    return reply.status(201).send({ user_id: id, balance: presentBalance(balance) });
  });
}

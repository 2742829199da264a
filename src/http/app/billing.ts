import type { FastifyInstance } from "fastify";
import { billingSummary } from "../../billing/accounts.ts";
import { listCredits } from "../../billing/balances.ts";
import { listFeaturePrices } from "../../billing/featurePrices.ts";
import { listPriceSets } from "../../billing/priceBook.ts";
import { presentCredit, presentDailyUsage, presentPublicFeaturePrice, presentPriceList, presentSummary, presentUsagePage } from "../../presenters/billing.ts";
import { dailyUsage, usagePage } from "../../billing/usageReports.ts";
import { registerAccountBillingRoutes, registerAdminUsageRoutes, registerFeaturePriceRoutes, registerPlanRoutes, registerPriceRoutes } from "./billingAdmin.ts";
import { type BillingRoutesDeps, billingAccount, priceListReader, sendCsv, toUsageFilter, usageCsvStream, usageQueries } from "./billingParams.ts";

/**
 * The web app's billing API. Money goes in as decimal strings ("2.19"), parsed exactly; it comes
 * out as integer `*_micros` plus decimal strings. Token prices are per million tokens; feature
 * prices (search…) per `per` units. Each handler parses (zod), asks a policy, calls a query or a
 * command (src/commands/billing.ts) and presents (src/billing/presenters.ts).
 *
 * Signed-in users, about themselves (here):
 *   GET  /api/billing/summary                 plan, balance, quota use and reset times
 *   GET  /api/billing/usage                   ledger rows with their line items, newest first: ?from&to&model&status&api_key_id&limit&cursor
 *   GET  /api/billing/usage.csv               the same rows as CSV (all pages)
 *   GET  /api/billing/usage/daily             tokens, cost and cache savings per local day and model: ?from&to&model
 *   GET  /api/billing/credits                 the caller's credits (grants, top-ups, codes), newest first
 *   GET  /api/billing/prices                  the price list with the window in force now, and feature prices
 * Admins (billingAdmin.ts):
 *   GET  /api/admin/billing/overview          per-user totals with balances: ?from&to
 *   GET  /api/admin/billing/usage/daily       every user's usage per local day and model: ?from&to&model&user_id
 *   GET  /api/admin/billing/usage(.csv)       every user's rows; also ?user_id
 *   GET  /api/admin/billing/prices            every price set ("*" is the default for unpriced models)
 *   PUT  /api/admin/billing/prices/:model     {input_cache_hit, input_cache_miss, output, windows: [{start, end, discount_percent | prices…}]}
 *   DELETE /api/admin/billing/prices/:model
 *   GET  /api/admin/billing/feature-prices    prices of non-token meters (search…), stored or configured defaults
 *   PUT  /api/admin/billing/feature-prices/:meter  {price, per}
 *   DELETE /api/admin/billing/feature-prices/:meter
 *   GET  /api/admin/billing/plans
 *   PUT  /api/admin/billing/plans/:id         {name, billed, allowed_models, daily_token_quota, monthly_token_quota, max_thinking_budget, concurrency_weight, features}
 *   GET  /api/admin/billing/users/:id         plan, balance, credits
 *   PUT  /api/admin/billing/users/:id/plan    {plan_id}
 *   POST /api/admin/billing/users/:id/credits {amount, kind: granted|topped_up, note}
 * from/to: milliseconds, an ISO 8601 instant, or a date YYYY-MM-DD (local midnight in the billing time zone).
 */
export type { BillingRoutesDeps };

export function registerBillingRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  registerOwnBillingRoutes(app, deps);
  registerAdminUsageRoutes(app, deps);
  registerPriceRoutes(app, deps);
  registerFeaturePriceRoutes(app, deps);
  registerPlanRoutes(app, deps);
  registerAccountBillingRoutes(app, deps);
}

function registerOwnBillingRoutes(app: FastifyInstance, deps: BillingRoutesDeps): void {
  const db = deps.store.db;
  const q = usageQueries(deps.timeZone);

  app.get("/api/billing/summary", async (request) => {
    const actor = billingAccount(request);
    const summary = await billingSummary(db, { userId: actor.userId, planId: actor.planId }, deps);
    return presentSummary(summary, deps);
  });

  app.get("/api/billing/usage", async (request) => {
    const actor = billingAccount(request);
    const query = q.list.parse(request.query);
    return presentUsagePage(await usagePage(db, toUsageFilter(query, actor.userId), { limit: query.limit, ...(query.cursor ? { cursor: query.cursor } : {}) }));
  });

  app.get("/api/billing/usage.csv", async (request, reply) => {
    const actor = billingAccount(request);
    return sendCsv(reply, usageCsvStream(deps.store, toUsageFilter(q.filter.parse(request.query), actor.userId)));
  });

  app.get("/api/billing/usage/daily", async (request) => {
    const actor = billingAccount(request);
    const days = await dailyUsage(db, toUsageFilter(q.filter.parse(request.query), actor.userId), deps.timeZone);
    return { currency: deps.currency, time_zone: deps.timeZone, days: days.map(presentDailyUsage) };
  });

  app.get("/api/billing/credits", async (request) => {
    const actor = billingAccount(request);
    return { currency: deps.currency, data: (await listCredits(db, actor.userId)).map(presentCredit) };
  });

  app.get("/api/billing/prices", async (request) => {
    priceListReader(request);
    const [sets, features] = await Promise.all([listPriceSets(db), listFeaturePrices(db, deps.featurePrices)]);
    return { ...presentPriceList(sets, { currency: deps.currency, timeZone: deps.timeZone, at: Date.now() }), feature_prices: features.map(presentPublicFeaturePrice) };
  });
}

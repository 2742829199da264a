import assert from "node:assert/strict";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import { insertUser } from "../auth/users.ts";
import { getBalance, listCredits } from "../billing/balances.ts";
import { listFeaturePrices } from "../billing/featurePrices.ts";
import { getPlan, type Plan } from "../billing/plans.ts";
import { listPriceSets } from "../billing/priceBook.ts";
import { ServiceError } from "../errors.ts";
import { creditUser, putPlan, removeFeaturePrice, removeModelPrices, setFeaturePrice, setModelPrices, setUserPlan, type BillingAdmin } from "./billing.ts";

// Audit rows are read back in time order: each change gets its own millisecond.
let clock = Date.parse("2025-02-10T12:00:00Z");
const tick = () => ++clock;
const root: BillingAdmin = { userId: "root-id", ip: "203.0.113.9" };
const R1 = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
const PRO: Plan = {
  id: "pro",
  name: "Pro",
  billed: true,
  allowedModels: null,
  dailyTokenQuota: null,
  monthlyTokenQuota: null,
  maxThinkingBudget: null,
  concurrencyWeight: 2,
  features: ["search"],
};

async function audit(store: TestStore) {
  const rows = await store.db.selectFrom("audit_log").selectAll().orderBy("created_at").orderBy("id").execute();
  return rows.map((r) => ({ action: r.action, target: r.target_id, actor: r.actor_user_id, ip: r.ip, details: JSON.parse(r.details) as Record<string, unknown> }));
}

function refusedAs(kind: ServiceError["kind"], param?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ServiceError, String(e));
    assert.equal(e.kind, kind);
    if (param !== undefined) assert.equal(e.param, param);
    return true;
  };
}

forEachDatabase("price changes: each commits with its audit row; a refused one writes neither", async (store) => {
  await setModelPrices(store.db, root, { model: "r1", base: R1, windows: [] }, tick());
  await assert.rejects(setModelPrices(store.db, root, { model: "r1", base: { ...R1, output: -1 }, windows: [] }, tick()), refusedAs("invalid_request"));
  await assert.rejects(
    setModelPrices(store.db, root, { model: "r1", base: R1, windows: [{ start: 0, end: 60, prices: R1 }, { start: 30, end: 90, prices: R1 }] }, tick()),
    refusedAs("invalid_request"),
  );
  assert.deepEqual((await listPriceSets(store.db)).map((s) => [s.model, s.base.output, s.windows.length]), [["r1", 2_190_000, 0]]);
  await removeModelPrices(store.db, root, "r1", tick());
  await assert.rejects(removeModelPrices(store.db, root, "r1", tick()), refusedAs("not_found", "model"));
  assert.deepEqual(await listPriceSets(store.db), []);
  const log = await audit(store);
  assert.deepEqual(log.map((e) => [e.action, e.target, e.actor, e.ip]), [
    ["billing.price.set", "r1", "root-id", "203.0.113.9"],
    ["billing.price.delete", "r1", "root-id", "203.0.113.9"],
  ]);
  assert.equal(log[0]!.details.output_micros, 2_190_000);
});

forEachDatabase("plans and users' plans: saved and audited together; bad ids, unknown plans and users are refused", async (store) => {
  await putPlan(store.db, root, PRO, tick());
  await assert.rejects(putPlan(store.db, root, { ...PRO, id: "Bad Id" }, tick()), refusedAs("invalid_request", "id"));
  await assert.rejects(putPlan(store.db, root, { ...PRO, id: "big", concurrencyWeight: 0 }, tick()), refusedAs("invalid_request"));
  assert.equal((await getPlan(store.db, "pro"))?.concurrencyWeight, 2);
  assert.equal(await getPlan(store.db, "big"), undefined);

  const alice = await insertUser(store.db, { username: "alice", email: null, passwordHash: "x", role: "user", status: "active", planId: "free" });
  const moved = await setUserPlan(store.db, root, alice.id, "pro", tick());
  assert.equal(moved.plan.id, "pro");
  assert.equal(moved.user.plan_id, "pro");
  await assert.rejects(setUserPlan(store.db, root, alice.id, "nope", tick()), refusedAs("invalid_request", "plan_id"));
  await assert.rejects(setUserPlan(store.db, root, "no-such-user", "free", tick()), refusedAs("not_found"));
  const row = await store.db.selectFrom("users").select("plan_id").where("id", "=", alice.id).executeTakeFirstOrThrow();
  assert.equal(row.plan_id, "pro");
  assert.deepEqual((await audit(store)).map((e) => [e.action, e.target, e.details]), [
    ["billing.plan.set", "pro", { id: "pro", name: "Pro", billed: true, allowed_models: null, daily_token_quota: null, monthly_token_quota: null, max_thinking_budget: null, concurrency_weight: 2, features: ["search"], stored_bytes_quota: null, daily_search_quota: null }],
    ["user.plan", alice.id, { from: "free", to: "pro" }],
  ]);
});

forEachDatabase("credit: the credit, the balance and the audit row commit together; zero and unknown users are refused", async (store) => {
  const alice = await insertUser(store.db, { username: "alice", email: null, passwordHash: "x", role: "user", status: "active", planId: "free" });
  const balance = await creditUser(store.db, root, { userId: alice.id, kind: "topped_up", amountMicros: 1_500_000, note: "invoice 7" }, tick());
  assert.equal(balance.toppedUpMicros, 1_500_000);
  await assert.rejects(creditUser(store.db, root, { userId: alice.id, kind: "granted", amountMicros: 0, note: null }, tick()), refusedAs("invalid_request", "amount"));
  await assert.rejects(creditUser(store.db, root, { userId: "ghost", kind: "granted", amountMicros: 5, note: null }, tick()), refusedAs("not_found"));
  assert.deepEqual(await listCredits(store.db, "ghost"), [], "a refused credit leaves no credit row");
  assert.equal((await getBalance(store.db, "ghost")).grantedMicros, 0);
  const [credit] = await listCredits(store.db, alice.id);
  assert.deepEqual([credit?.source, credit?.createdBy, credit?.note], ["admin", "root-id", "invoice 7"]);
  assert.deepEqual((await audit(store)).map((e) => [e.action, e.target, e.details]), [["billing.credit.add", alice.id, { kind: "topped_up", amount_micros: 1_500_000 }]]);
});

forEachDatabase("feature prices: set over the configured default, removed back to it, audited; token meters refused", async (store) => {
  const defaults = { search: { unitPriceMicros: 4_000, per: 1 } };
  assert.deepEqual((await listFeaturePrices(store.db, defaults)).map((p) => [p.meter, p.unitPriceMicros, p.source]), [["search", 4_000, "default"]]);
  await setFeaturePrice(store.db, root, "search", { unitPriceMicros: 5_000, per: 1 }, tick());
  await setFeaturePrice(store.db, root, "stored_bytes", { unitPriceMicros: 20, per: 1_000_000 }, tick());
  await assert.rejects(setFeaturePrice(store.db, root, "output_tokens", { unitPriceMicros: 1, per: 1 }, tick()), refusedAs("invalid_request"));
  await assert.rejects(setFeaturePrice(store.db, root, "search", { unitPriceMicros: 1, per: 0 }, tick()), refusedAs("invalid_request"));
  assert.deepEqual(
    (await listFeaturePrices(store.db, defaults)).map((p) => [p.meter, p.unitPriceMicros, p.per, p.source, p.updatedBy]),
    [
      ["search", 5_000, 1, "stored", "root-id"],
      ["stored_bytes", 20, 1_000_000, "stored", "root-id"],
    ],
  );
  await removeFeaturePrice(store.db, root, "search", tick());
  await assert.rejects(removeFeaturePrice(store.db, root, "search", tick()), refusedAs("not_found", "meter"));
  assert.deepEqual((await listFeaturePrices(store.db, defaults)).map((p) => [p.meter, p.unitPriceMicros, p.source]), [
    ["search", 4_000, "default"],
    ["stored_bytes", 20, "stored"],
  ]);
  assert.deepEqual((await audit(store)).map((e) => [e.action, e.target, e.details]), [
    ["billing.feature_price.set", "search", { unit_price_micros: 5_000, per: 1 }],
    ["billing.feature_price.set", "stored_bytes", { unit_price_micros: 20, per: 1_000_000 }],
    ["billing.feature_price.delete", "search", {}],
  ]);
});

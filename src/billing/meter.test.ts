import assert from "node:assert/strict";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import type { Usage } from "../engines/types.ts";
import { addCredit, getBalance, listCredits } from "./balances.ts";
import { ServiceError } from "../errors.ts";
import { saveFeaturePrice } from "./featurePrices.ts";
import { getEntry, itemsOf } from "./ledger.ts";
import { BillingRefusal, Meter, type ReservationInput, type BillingSubject, type MeterOptions } from "./meter.ts";
import { getPlan, planWeight, savePlan, type Plan } from "./plans.ts";
import { savePriceSet } from "./priceBook.ts";
import { discounted, parseClock, type TokenPrices } from "./pricing.ts";

const R1: TokenPrices = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
const MODEL = "r1";
const PRO: Plan = {
  id: "pro",
  name: "Pro",
  billed: true,
  allowedModels: [MODEL],
  dailyTokenQuota: null,
  monthlyTokenQuota: null,
  maxThinkingBudget: null,
  concurrencyWeight: 2,
  features: ["search"],
};
const alice: BillingSubject = { kind: "user", userId: "alice", apiKeyId: "key-1", planId: "pro" };

function usage(hit: number, miss: number, reasoning: number, answer: number): Usage {
  return {
    prompt_tokens: hit + miss,
    completion_tokens: reasoning + answer,
    total_tokens: hit + miss + reasoning + answer,
    prompt_cache_hit_tokens: hit,
    prompt_cache_miss_tokens: miss,
    completion_tokens_details: { reasoning_tokens: reasoning },
    prompt_tokens_details: { cached_tokens: hit },
  };
}

/** A settable clock: tests pin the instant a request starts (price windows, quota periods). */
function clock(iso: string) {
  let now = Date.parse(iso);
  return { now: () => now, set: (next: string) => void (now = Date.parse(next)), advance: (ms: number) => void (now += ms) };
}

function meterFor(store: TestStore, options: Partial<MeterOptions> = {}): Meter {
  return new Meter(store.db, { timeZone: "UTC", defaultPlanId: "free", leaseMs: 60_000, defaultMaxOutputTokens: 1000, ...options });
}

async function setUp(store: TestStore): Promise<void> {
  await savePlan(store.db, PRO);
  await savePriceSet(store.db, { model: MODEL, base: R1, windows: [] }, "admin");
}

const request = (input: Partial<ReservationInput> = {}): ReservationInput => ({
  subject: alice,
  model: MODEL,
  engine: "local",
  promptTokens: 100,
  maxTokens: 50,
  ...input,
});

forEachDatabase("a billed request reserves its maximum cost, then pays its real cost from granted credit first", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 100, source: "access_code" });
  await addCredit(store.db, { userId: "alice", kind: "topped_up", amountMicros: 1_000, source: "admin", createdBy: "root" });
  const meter = meterFor(store);

  // 100 prompt tokens as misses + 50 output tokens: 55_000_000 + 109_500_000 = 164.5 → 165 micros.
  const charge = await meter.reserve(request());
  assert.equal(charge.reservedMicros, 165);
  assert.equal(charge.billed, true);
  assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 100, toppedUpMicros: 1_000, reservedMicros: 165 });
  const open = await getEntry(store.db, charge.id);
  assert.equal(open?.status, "open");
  assert.equal(open?.holder, meter.holder);

  // Real usage: 60 hits + 40 misses + 30 reasoning + 10 answer = 8.4 + 22 + 87.6 = 118 micros.
  const settled = await meter.settleAlone(charge, { status: "completed", usage: usage(60, 40, 30, 10) });
  assert.equal(settled.costMicros, 118);
  assert.equal(settled.chargedMicros, 118);
  assert.equal(settled.entry?.status, "completed");
  assert.equal(settled.entry?.reasoning_tokens, 30);
  assert.equal(settled.entry?.answer_tokens, 10);
  assert.equal(settled.entry?.price_output, 2_190_000);
  assert.equal(settled.entry?.holder, null);
  // Granted 100 went first, then 18 of the topped-up 1000.
  assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 0, toppedUpMicros: 982, reservedMicros: 0 });
  assert.equal((await listCredits(store.db, "alice")).length, 2);
});

forEachDatabase("refusals: 402 without balance, 403 for a model outside the plan; neither leaves a ledger row", async (store) => {
  await setUp(store);
  const meter = meterFor(store);
  await assert.rejects(meter.reserve(request()), (e: BillingRefusal) => {
    assert.equal(e.status, 402);
    assert.equal(e.code, "insufficient_balance");
    assert.match(e.message, /may cost up to 0\.000165 .*available balance is 0\.00/);
    return true;
  });
  await addCredit(store.db, { userId: "alice", kind: "topped_up", amountMicros: 164, source: "admin" });
  await assert.rejects(meter.reserve(request()), { status: 402 }); // one micro short
  // Whether the plan includes the model is the model.use policy's decision (src/policies/models.ts),
  // made in the serving pipeline before billing: tested there and in test/billing-api.test.ts.
  assert.equal((await store.db.selectFrom("usage_ledger").selectAll().execute()).length, 0);
  assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 0, toppedUpMicros: 164, reservedMicros: 0 });
});

forEachDatabase("local mode and unbilled plans are metered but never charged", async (store) => {
  await setUp(store);
  const meter = meterFor(store);
  const local = await meter.reserve(request({ subject: { kind: "local" } }));
  const free = await meter.reserve(request({ subject: { kind: "user", userId: "bob", apiKeyId: null, planId: null } }));
  assert.equal(local.billed, false);
  assert.equal(free.plan?.id, "free");
  for (const charge of [local, free]) {
    assert.equal(charge.reservedMicros, 0);
    const settled = await meter.settleAlone(charge, { status: "completed", usage: usage(0, 100, 0, 50) });
    assert.equal(settled.costMicros, 165, "the cost is still metered");
    assert.equal(settled.chargedMicros, 0);
  }
  assert.equal((await getEntry(store.db, local.id))?.user_id, null);
  assert.deepEqual(await getBalance(store.db, "bob"), { userId: "bob", grantedMicros: 0, toppedUpMicros: 0, reservedMicros: 0 });
});

forEachDatabase("the price in force when the request started is the one it pays, windows and admin changes alike", async (store) => {
  await savePlan(store.db, PRO);
  await savePriceSet(store.db, { model: MODEL, base: R1, windows: [{ start: parseClock("16:30"), end: parseClock("00:30"), prices: discounted(R1, 75) }] }, null);
  await addCredit(store.db, { userId: "alice", kind: "topped_up", amountMicros: 1_000_000, source: "admin" });
  const time = clock("2025-02-10T16:29:59.999Z");
  const meter = meterFor(store, { now: time.now });
  const big = request({ promptTokens: 12_000, maxTokens: 3_000 });
  const peak = await meter.reserve(big);
  time.set("2025-02-10T16:30:00.000Z");
  const offPeak = await meter.reserve(big);
  assert.equal(peak.quote.window, null);
  assert.equal(offPeak.quote.window, "16:30-00:30");
  // The admin doubles the output price while both run: neither notices.
  await savePriceSet(store.db, { model: MODEL, base: { ...R1, output: 4_380_000 }, windows: [] }, "admin");
  time.set("2025-02-11T00:45:00.000Z"); // both settle after the window closed
  const example = usage(10_000, 2_000, 2_500, 500);
  assert.equal((await meter.settleAlone(peak, { status: "completed", usage: example })).chargedMicros, 9_070);
  const offPeakEntry = (await meter.settleAlone(offPeak, { status: "completed", usage: example })).entry;
  assert.equal(offPeakEntry?.charged_micros, 2_268);
  assert.equal(offPeakEntry?.price_window, "16:30-00:30");
  // A request starting now pays the new price: 1400 + 1100 + 3000 × 4.38 = 15_640 micros.
  const later = await meter.reserve(big);
  assert.equal((await meter.settleAlone(later, { status: "completed", usage: example })).chargedMicros, 15_640);
  assert.equal((await getBalance(store.db, "alice")).toppedUpMicros, 1_000_000 - 9_070 - 2_268 - 15_640);
});

forEachDatabase("a settled cost above the reservation is not charged beyond it (cost_micros keeps the truth)", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 10_000, source: "admin" });
  const meter = meterFor(store);
  const charge = await meter.reserve(request());
  const settled = await meter.settleAlone(charge, { status: "completed", usage: usage(0, 100, 0, 500) });
  assert.equal(settled.costMicros, 1_150);
  assert.equal(settled.chargedMicros, 165);
  assert.equal((await getBalance(store.db, "alice")).grantedMicros, 10_000 - 165);
});

forEachDatabase("quotas: a used-up daily quota answers 429 with the next local midnight; the monthly one wins when later", async (store) => {
  await savePlan(store.db, { ...PRO, billed: false, dailyTokenQuota: 1_000, monthlyTokenQuota: 1_500 });
  const time = clock("2025-02-10T15:00:00Z");
  const meter = meterFor(store, { now: time.now, timeZone: "Asia/Shanghai" });
  const first = await meter.reserve(request());
  await meter.settleAlone(first, { status: "completed", usage: usage(0, 600, 300, 100) }); // 1000 tokens: quota reached
  const refusal = await meter.reserve(request()).then(
    () => assert.fail("admitted past the quota"),
    (e: BillingRefusal) => e,
  );
  assert.equal(refusal.status, 429);
  assert.equal(refusal.code, "quota_exceeded");
  // 15:00 UTC is 23:00 in Beijing: the day resets at 16:00 UTC, in one hour.
  assert.match(refusal.message, /daily token quota \(1000 tokens\).*2025-02-10T16:00:00\.000Z/);
  assert.equal(refusal.headers["retry-after"], "3600");
  time.set("2025-02-10T16:00:00Z");
  const nextDay = await meter.reserve(request());
  await meter.settleAlone(nextDay, { status: "completed", usage: usage(0, 400, 0, 100) });
  const monthly = await meter.reserve(request()).then(
    () => assert.fail("admitted past the monthly quota"),
    (e: BillingRefusal) => e,
  );
  assert.match(monthly.message, /monthly token quota \(1500 tokens\).*2025-02-28T16:00:00\.000Z/);
});

forEachDatabase("the plan caps the thinking budget and bounds output when nothing else does", async (store) => {
  await savePlan(store.db, { ...PRO, maxThinkingBudget: 256 });
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000_000, source: "admin" });
  await savePriceSet(store.db, { model: "*", base: R1, windows: [] }, null);
  const meter = meterFor(store, { defaultMaxOutputTokens: 1000 });
  const a = await meter.reserve(request({ thinkingBudget: 4096 }));
  assert.equal(a.thinkingBudget, 256);
  const b = await meter.reserve(request({ thinkingBudget: undefined, maxTokens: undefined, contextLength: 4096 }));
  assert.equal(b.thinkingBudget, 256);
  assert.equal(b.maxTokens, undefined, "the engine's own context bound applies");
  // 100 misses + (4096 - 100) outputs at R1: 55_000_000 + 8_751_240_000 → 8807 micros (rounded up).
  assert.equal(b.reservedMicros, 8_807);
  assert.equal(b.quote.source, "*", "the default price set covers models without their own");
  const c = await meter.reserve(request({ maxTokens: undefined, contextLength: undefined }));
  assert.equal(c.maxTokens, 1000, "an unbounded upstream gets the configured bound imposed");
  assert.equal(planWeight(await getPlan(store.db, "pro")), 2);
  assert.equal(planWeight(undefined), 1);
  for (const charge of [a, b, c]) await meter.settleAlone(charge, { status: "failed", usage: usage(0, 0, 0, 0) });
  assert.equal((await getBalance(store.db, "alice")).reservedMicros, 0);
});

forEachDatabase("50 concurrent requests against a balance that covers 10: exactly 10 admitted, never negative, ledger = balance change", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "topped_up", amountMicros: 165 * 10, source: "admin" });
  const meters = [meterFor(store), meterFor(store), meterFor(store)];
  if (store.dialect === "postgres") {
    // A second connection pool: a second gateway replica. (On SQLite one process has one handle:
    // better-sqlite3 is synchronous, so a second handle waiting for the lock would block the first.)
    const other = await store.openAnother();
    meters.push(new Meter(other.db, meters[0]!.options));
  }
  const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => meters[i % meters.length]!.reserve(request())));
  const admitted = results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<Meter["reserve"]>>>).value);
  const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as BillingRefusal);
  assert.equal(admitted.length, 10);
  assert.equal(refused.length, 40);
  assert.ok(refused.every((e) => e.status === 402));
  assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 0, toppedUpMicros: 1_650, reservedMicros: 1_650 });
  // Settle them all at once, each with a different real usage.
  await Promise.all(admitted.map((c, i) => meters[i % meters.length]!.settleAlone(c, { status: "completed", usage: usage(i, 100 - i, i, 10) })));
  const rows = await store.db.selectFrom("usage_ledger").selectAll().execute();
  assert.equal(rows.length, 10);
  assert.ok(rows.every((r) => r.status === "completed"));
  const charged = rows.reduce((sum, r) => sum + r.charged_micros, 0);
  const after = await getBalance(store.db, "alice");
  assert.equal(after.reservedMicros, 0);
  assert.ok(after.toppedUpMicros >= 0);
  assert.equal(1_650 - after.toppedUpMicros, charged);
});

forEachDatabase("admissions and settlements racing each other never overdraw and always add up", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const meter = meterFor(store);
  let completed = 0;
  await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      try {
        const charge = await meter.reserve(request());
        await meter.settleAlone(charge, { status: i % 5 === 0 ? "stopped" : "completed", usage: usage(0, 100, i % 7, 20) });
        completed++;
      } catch (e) {
        if (!(e instanceof BillingRefusal)) throw e;
      }
      const balance = await getBalance(store.db, "alice");
      assert.ok(balance.grantedMicros >= 0 && balance.reservedMicros <= balance.grantedMicros);
    }),
  );
  const rows = await store.db.selectFrom("usage_ledger").selectAll().execute();
  assert.equal(rows.length, completed);
  assert.ok(completed >= 6, `only ${completed} completed`);
  const after = await getBalance(store.db, "alice");
  assert.equal(after.reservedMicros, 0);
  assert.equal(1_000 - after.grantedMicros, rows.reduce((s, r) => s + r.charged_micros, 0));
});

forEachDatabase("crash rule: a reservation whose process died is released and charged nothing once its lease runs out", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const time = clock("2025-02-10T10:00:00Z");
  const dead = meterFor(store, { now: time.now, leaseMs: 1_000 });
  const orphan = await dead.reserve(request());
  const alive = meterFor(store, { now: time.now, leaseMs: 1_000 });
  await alive.start();
  try {
      time.advance(999);
      assert.equal(await alive.sweep(), 0, "the lease has not run out yet");
      time.advance(2);
      assert.equal(await alive.sweep(), 1);
      const row = await getEntry(store.db, orphan.id);
      assert.equal(row?.status, "interrupted");
      assert.equal(row?.charged_micros, 0);
      assert.equal(row?.ended_at, time.now());
      assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 1_000, toppedUpMicros: 0, reservedMicros: 0 });
      // If the "dead" process was only stalled, its late settlement changes nothing.
      const late = await dead.settleAlone(orphan, { status: "completed", usage: usage(0, 100, 0, 50) });
      assert.equal(late.entry, undefined);
      assert.equal((await getBalance(store.db, "alice")).grantedMicros, 1_000);
  } finally {
    await alive.close();
  }
});

forEachDatabase("a live process renews its leases, so the sweep leaves its requests alone", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const meter = meterFor(store, { leaseMs: 300 });
  await meter.start();
  try {
    const charge = await meter.reserve(request());
    const before = (await getEntry(store.db, charge.id))!.lease_until!;
    // Wait until the heartbeat has moved the lease forward (it runs every 100 ms here).
    for (let i = 0; i < 100 && (await getEntry(store.db, charge.id))!.lease_until! <= before; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok((await getEntry(store.db, charge.id))!.lease_until! > before, "lease was never renewed");
    const sweeper = meterFor(store, { leaseMs: 300 });
    assert.equal(await sweeper.sweep(), 0);
    assert.equal((await meter.settleAlone(charge, { status: "completed", usage: usage(0, 10, 0, 5) })).entry?.status, "completed");
  } finally {
    await meter.close();
  }
});

forEachDatabase("on a database no other server shares, a restart releases what the dead process left open at once", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const dead = meterFor(store);
  const orphan = await dead.reserve(request());
  const restarted = meterFor(store, { exclusiveDatabase: true });
  const own = await restarted.reserve(request());
  await restarted.start();
  try {
    assert.equal((await getEntry(store.db, orphan.id))?.status, "interrupted", "released without waiting for its lease");
    assert.equal((await getEntry(store.db, own.id))?.status, "open", "its own reservations are kept");
    assert.equal((await getBalance(store.db, "alice")).reservedMicros, own.reservedMicros);
  } finally {
    await restarted.close();
  }
});

forEachDatabase("a charge whose settlement rolled back is no longer renewed, so the sweep releases it (charged nothing)", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const meter = meterFor(store, { leaseMs: 300 });
  await meter.start();
  try {
    const lost = await meter.reserve(request());
    const live = await meter.reserve(request());
    await assert.rejects(
      store.db.transaction().execute(async (trx) => {
        await meter.settle(trx, lost, { status: "completed", usage: usage(0, 100, 0, 50) });
        throw new Error("the caller's other write failed");
      }),
      /other write failed/,
    );
    const lostLease = (await getEntry(store.db, lost.id))!.lease_until!;
    const liveLease = (await getEntry(store.db, live.id))!.lease_until!;
    for (let i = 0; i < 100 && (await getEntry(store.db, live.id))!.lease_until! <= liveLease; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok((await getEntry(store.db, live.id))!.lease_until! > liveLease, "the live charge was never renewed");
    assert.equal((await getEntry(store.db, lost.id))!.lease_until, lostLease, "the lost charge was renewed");
    const sweeper = meterFor(store, { leaseMs: 300, now: () => lostLease + 1 });
    assert.equal(await sweeper.sweep(), 1);
    assert.equal((await getEntry(store.db, lost.id))?.status, "interrupted");
    await meter.settleAlone(live, { status: "completed", usage: usage(0, 100, 0, 50) });
    const balance = await getBalance(store.db, "alice");
    assert.equal(balance.reservedMicros, 0);
    assert.equal(balance.grantedMicros, 1_000 - 165);
  } finally {
    await meter.close();
  }
});

forEachDatabase("settlement writes line items in the same transaction; the row's cost is their sum", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const meter = meterFor(store);
  const charge = await meter.reserve(request());
  const settled = await meter.settleAlone(charge, { status: "completed", usage: usage(60, 40, 30, 10) });
  const items = (await itemsOf(store.db, [charge.id])).get(charge.id)!;
  assert.deepEqual(
    items.map((i) => [i.meter, i.quantity, i.unitPriceMicros, i.per, i.amountMicros]),
    [
      ["input_cache_hit_tokens", 60, 140_000, 1_000_000, 8],
      ["input_cache_miss_tokens", 40, 550_000, 1_000_000, 22],
      ["output_tokens", 40, 2_190_000, 1_000_000, 88],
    ],
  );
  assert.deepEqual(settled.items, items);
  assert.equal(settled.entry?.cost_micros, 118);
  assert.equal(items.reduce((s, i) => s + i.amountMicros, 0), settled.entry?.cost_micros);

  // A settlement whose transaction rolls back leaves no items either.
  const lost = await meter.reserve(request());
  await assert.rejects(
    store.db.transaction().execute(async (trx) => {
      await meter.settle(trx, lost, { status: "completed", usage: usage(0, 10, 0, 5), items: [{ meter: "search", quantity: 1 }] });
      throw new Error("the request log write failed");
    }),
    /request log write failed/,
  );
  assert.equal((await itemsOf(store.db, [lost.id])).size, 0);
  // The sweep's interrupted rows cost nothing and have no items.
  assert.equal(await meterFor(store, { now: () => Date.now() + 120_000 }).sweep(), 1);
  assert.equal((await getEntry(store.db, lost.id))?.status, "interrupted");
  assert.equal((await itemsOf(store.db, [lost.id])).size, 0);
});

forEachDatabase("searches are line items priced from the feature list frozen at admission; their maximum is reserved", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 100_000, source: "admin" });
  // Configured default 4_000 per search; the admin's stored price (5_000) wins over it.
  const meter = meterFor(store, { featurePrices: { search: { unitPriceMicros: 4_000, per: 1 }, stored_bytes: { unitPriceMicros: 100, per: 1_000_000 } } });
  await saveFeaturePrice(store.db, "search", { unitPriceMicros: 5_000, per: 1 }, "root");
  const charge = await meter.reserve(request({ features: { search: 3 } }));
  assert.equal(charge.reservedMicros, 165 + 3 * 5_000, "tokens and three searches");
  // The admin raises the price mid-request: this request keeps the price it started with.
  await saveFeaturePrice(store.db, "search", { unitPriceMicros: 9_000, per: 1 }, "root");
  const settled = await meter.settleAlone(charge, {
    status: "completed",
    usage: usage(0, 100, 0, 50),
    items: [
      { meter: "search", quantity: 1 },
      { meter: "search", quantity: 1 },
      { meter: "stored_bytes", quantity: 2_500_000 },
      { meter: "unpriced_thing", quantity: 4 },
    ],
  });
  assert.deepEqual(
    settled.items.map((i) => [i.meter, i.quantity, i.unitPriceMicros, i.per, i.amountMicros]),
    [
      ["input_cache_miss_tokens", 100, 550_000, 1_000_000, 55],
      ["output_tokens", 50, 2_190_000, 1_000_000, 110],
      ["search", 2, 5_000, 1, 10_000],
      ["stored_bytes", 2_500_000, 100, 1_000_000, 250],
      ["unpriced_thing", 4, 0, 1, 0],
    ],
  );
  assert.equal(settled.costMicros, 10_415);
  assert.equal(settled.chargedMicros, 10_415);
  assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 100_000 - 10_415, toppedUpMicros: 0, reservedMicros: 0 });
  // Token meters come from the usage, never from reported items.
  const other = await meter.reserve(request());
  await assert.rejects(meter.settleAlone(other, { status: "completed", usage: usage(0, 1, 0, 1), items: [{ meter: "output_tokens", quantity: 1_000 }] }), RangeError);
});

forEachDatabase("a plan without search refuses a request that declares searches (403), before anything is reserved", async (store) => {
  await savePlan(store.db, { ...PRO, features: [] });
  await savePriceSet(store.db, { model: MODEL, base: R1, windows: [] }, "admin");
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 100_000, source: "admin" });
  const meter = meterFor(store);
  await assert.rejects(meter.reserve(request({ features: { search: 1 } })), (e: BillingRefusal) => {
    assert.ok(e instanceof ServiceError, "a transport-neutral error");
    assert.equal(e.kind, "forbidden");
    assert.equal(e.status, 403);
    assert.equal(e.code, "feature_not_allowed");
    return true;
  });
  // Declaring none of it is fine, and the local operator has no plan to limit it.
  await meter.settleAlone(await meter.reserve(request({ features: { search: 0 } })), { status: "completed", usage: usage(0, 1, 0, 1) });
  await meter.settleAlone(await meter.reserve(request({ subject: { kind: "local" }, features: { search: 2 } })), { status: "completed", usage: usage(0, 1, 0, 1) });
  assert.equal((await getBalance(store.db, "alice")).reservedMicros, 0);
  assert.equal((await store.db.selectFrom("usage_ledger").selectAll().execute()).length, 2);
});

forEachDatabase("abandon: a charge whose settlement cannot be committed stops being renewed; the sweep releases it, charging nothing", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const meter = meterFor(store, { leaseMs: 300 });
  await meter.start();
  try {
    const stranded = await meter.reserve(request());
    const live = await meter.reserve(request());
    assert.equal(meter.liveCharges(), 2);
    // The database is unreachable when the request ends: the settlement transaction never starts.
    const down = await store.openAnother();
    // Used once, so that closing really ends its connections (Kysely skips closing an unused driver).
    await down.db.selectFrom("plans").select("id").execute();
    await down.close();
    await assert.rejects(down.db.transaction().execute((trx) => meter.settle(trx, stranded, { status: "completed", usage: usage(0, 100, 0, 50) })));
    assert.equal(meter.liveCharges(), 2, "settle never ran: without abandon the lease would be renewed for ever");
    meter.abandon(stranded);
    meter.abandon(stranded); // idempotent
    assert.equal(meter.liveCharges(), 1);

    const strandedLease = (await getEntry(store.db, stranded.id))!.lease_until!;
    const liveLease = (await getEntry(store.db, live.id))!.lease_until!;
    for (let i = 0; i < 100 && (await getEntry(store.db, live.id))!.lease_until! <= liveLease; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok((await getEntry(store.db, live.id))!.lease_until! > liveLease, "the live charge is still renewed");
    assert.equal((await getEntry(store.db, stranded.id))!.lease_until, strandedLease, "the abandoned charge is not");

    const sweeper = meterFor(store, { leaseMs: 300, now: () => strandedLease + 1 });
    assert.equal(await sweeper.sweep(), 1);
    const row = await getEntry(store.db, stranded.id);
    assert.equal(row?.status, "interrupted");
    assert.equal(row?.charged_micros, 0);
    assert.equal(row?.cost_micros, 0);
    assert.equal((await itemsOf(store.db, [stranded.id])).size, 0);
    assert.equal((await getBalance(store.db, "alice")).reservedMicros, live.reservedMicros, "only the live charge's reservation is held");
    await meter.settleAlone(live, { status: "completed", usage: usage(0, 100, 0, 50) });
    assert.deepEqual(await getBalance(store.db, "alice"), { userId: "alice", grantedMicros: 1_000 - 165, toppedUpMicros: 0, reservedMicros: 0 });
    assert.equal(meter.liveCharges(), 0);
  } finally {
    await meter.close();
  }
});

forEachDatabase("settleAlone abandons the charge when its transaction fails", async (store) => {
  await setUp(store);
  await addCredit(store.db, { userId: "alice", kind: "granted", amountMicros: 1_000, source: "admin" });
  const other = await store.openAnother();
  const meter = new Meter(other.db, { timeZone: "UTC", defaultPlanId: "free", leaseMs: 60_000, defaultMaxOutputTokens: 1000 });
  const charge = await meter.reserve(request());
  await other.close(); // the database goes away before the request ends
  await assert.rejects(meter.settleAlone(charge, { status: "completed", usage: usage(0, 100, 0, 50) }));
  assert.equal(meter.liveCharges(), 0);
  assert.equal((await getEntry(store.db, charge.id))?.status, "open", "released later by the sweep, not settled");
});

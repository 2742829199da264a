import assert from "node:assert/strict";
import { join } from "node:path";
import { sql, type Kysely } from "kysely";
import { forEachDatabase } from "../../../test/support/databases.ts";
import { itemsOf } from "../../billing/ledger.ts";
import { Meter } from "../../billing/meter.ts";
import { dailyUsage, usageByUser } from "../../billing/usageReports.ts";
import { openDatabase, type OpenDatabaseOptions } from "../database.ts";
import { newId } from "../ids.ts";

/**
 * 0400_ledger_items on a database made before it: migrated to 0300, filled with ledger rows of the
 * old shape (token columns, cost_micros, no items), then migrated the rest of the way.
 */

const T0 = Date.parse("2025-02-10T12:00:00Z");

function oldRow(over: Record<string, unknown>) {
  const started = (over.started_at as number | undefined) ?? T0;
  return {
    id: newId(started),
    user_id: "alice",
    api_key_id: null,
    plan_id: "pro",
    model: "r1",
    engine: "local",
    status: "completed",
    billed: 1,
    price_input_cache_hit: 140_000,
    price_input_cache_miss: 550_000,
    price_output: 2_190_000,
    price_source: "r1",
    price_window: null,
    cache_hit_tokens: 0,
    cache_miss_tokens: 0,
    reasoning_tokens: 0,
    answer_tokens: 0,
    reserved_micros: 100_000,
    cost_micros: 0,
    charged_micros: 0,
    started_at: started,
    ended_at: started + 1000,
    holder: null,
    lease_until: null,
    ...over,
  };
}

forEachDatabase("0400 turns every settled ledger row into line items that add up to its cost, and reports keep their numbers", async (store) => {
  const options: OpenDatabaseOptions =
    store.dialect === "sqlite" ? { dataDir: join(store.options.dataDir, "before-0400") } : { ...store.options, schema: `${store.options.schema}_b0400` };
  try {
    const old = await openDatabase({ ...options, migrateTo: "0300_billing" });
    const named = {
      // 8.4 + 22 + 87.6 = 118 exactly: amounts 8, 22, 88.
      exact: oldRow({ cache_hit_tokens: 60, cache_miss_tokens: 40, reasoning_tokens: 30, answer_tokens: 10, cost_micros: 118, charged_micros: 118 }),
      // 55 + 109.5 = 164.5 → 165: the half micro goes to the output item.
      roundedUp: oldRow({ cache_miss_tokens: 100, answer_tokens: 50, cost_micros: 165, charged_micros: 100, reserved_micros: 100, user_id: "bob" }),
      unbilled: oldRow({ cache_miss_tokens: 10, answer_tokens: 5, cost_micros: 17, billed: 0, user_id: null, plan_id: null }),
      interrupted: oldRow({ status: "interrupted" }),
      failed: oldRow({ status: "failed" }),
      open: oldRow({ status: "open", ended_at: null, holder: "gone", lease_until: T0 + 60_000 }),
      // Written by hand with a cost its tokens do not give: kept, the difference an adjustment item.
      odd: oldRow({ cache_miss_tokens: 1_000_000, cost_micros: 600_000, charged_micros: 0 }),
    };
    // Enough plain rows to take the migration through several batches.
    const bulk = Array.from({ length: 2_345 }, (_, i) =>
      oldRow({ started_at: T0 + (i + 1) * 60_000, cache_hit_tokens: i, cache_miss_tokens: 7, reasoning_tokens: i % 13, answer_tokens: 3, cost_micros: costOf(i, 7, (i % 13) + 3) }),
    );
    const all = [...Object.values(named), ...bulk];
    const oldDb = old.db as unknown as Kysely<any>;
    for (let i = 0; i < all.length; i += 500) await oldDb.insertInto("usage_ledger").values(all.slice(i, i + 500)).execute();
    // Alice's balance still holds the open row's reservation.
    await oldDb.insertInto("balances").values({ user_id: "alice", granted_micros: 1_000_000, topped_up_micros: 0, reserved_micros: 100_000, updated_at: T0 }).execute();
    const reportsBefore = { daily: await dailyUsage(old.db, {}, "UTC"), users: await usageByUser(old.db, {}) };
    const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(old.db);
    assert.equal(applied.rows.at(-1)?.name, "0300_billing", "migrated only to 0300");
    await old.close();

    const migrated = await openDatabase(options);
    try {
      const db = migrated.db;
      const items = await itemsOf(
        db,
        all.map((r) => r.id),
      );
      const shape = (id: string) => items.get(id)?.map((i) => [i.meter, i.quantity, i.unitPriceMicros, i.per, i.amountMicros]);
      assert.deepEqual(shape(named.exact.id), [
        ["input_cache_hit_tokens", 60, 140_000, 1_000_000, 8],
        ["input_cache_miss_tokens", 40, 550_000, 1_000_000, 22],
        ["output_tokens", 40, 2_190_000, 1_000_000, 88],
      ]);
      assert.deepEqual(shape(named.roundedUp.id), [
        ["input_cache_miss_tokens", 100, 550_000, 1_000_000, 55],
        ["output_tokens", 50, 2_190_000, 1_000_000, 110],
      ]);
      assert.deepEqual(shape(named.unbilled.id), [
        ["input_cache_miss_tokens", 10, 550_000, 1_000_000, 6],
        ["output_tokens", 5, 2_190_000, 1_000_000, 11],
      ]);
      assert.equal(items.get(named.interrupted.id), undefined, "nothing used, nothing itemised");
      assert.equal(items.get(named.failed.id), undefined);
      assert.equal(items.get(named.open.id), undefined, "an open row gets its items when it settles");
      assert.deepEqual(shape(named.odd.id), [
        ["input_cache_miss_tokens", 1_000_000, 550_000, 1_000_000, 550_000],
        ["adjustment", 1, 50_000, 1, 50_000],
      ]);

      // Every settled row: cost_micros is the sum of its items, checked in SQL over the whole ledger.
      const mismatched = await db
        .selectFrom("usage_ledger as l")
        .leftJoin("ledger_items as i", "i.entry_id", "l.id")
        .select(["l.id", "l.cost_micros", sql<number>`coalesce(sum(i.amount_micros), 0)`.as("items")])
        .where("l.status", "!=", "open")
        .groupBy(["l.id", "l.cost_micros"])
        .having(sql<boolean>`coalesce(sum(i.amount_micros), 0) <> l.cost_micros`)
        .execute();
      assert.deepEqual(mismatched, []);
      const count = await db.selectFrom("ledger_items").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 3 + 2 + 2 + 2 + bulk.reduce((n, r) => n + (r.cache_hit_tokens > 0 ? 3 : 2), 0));

      assert.deepEqual({ daily: await dailyUsage(db, {}, "UTC"), users: await usageByUser(db, {}) }, reportsBefore, "reports show the same numbers");

      // The open row left by the old process is released on restart, charging nothing, with no items.
      const meter = new Meter(db, { timeZone: "UTC", defaultPlanId: "free", leaseMs: 60_000, defaultMaxOutputTokens: 1000, exclusiveDatabase: true });
      await meter.start();
      await meter.close();
      const reopened = await db.selectFrom("usage_ledger").select(["status", "cost_micros"]).where("id", "=", named.open.id).executeTakeFirstOrThrow();
      assert.deepEqual(reopened, { status: "interrupted", cost_micros: 0 });
      assert.equal((await itemsOf(db, [named.open.id])).size, 0);
      const balance = await db.selectFrom("balances").select(["granted_micros", "reserved_micros"]).where("user_id", "=", "alice").executeTakeFirstOrThrow();
      assert.deepEqual(balance, { granted_micros: 1_000_000, reserved_micros: 0 });
    } finally {
      await migrated.close();
    }
  } finally {
    if (options.schema) await sql`drop schema if exists ${sql.id(options.schema)} cascade`.execute(store.db);
  }
});

/** pricing.ts's rule at R1 prices: the exact sum rounded up once. */
function costOf(hit: number, miss: number, output: number): number {
  const exact = BigInt(hit) * 140_000n + BigInt(miss) * 550_000n + BigInt(output) * 2_190_000n;
  return Number((exact + 999_999n) / 1_000_000n);
}

import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import { newId } from "../store/ids.ts";
import type { LedgerRow } from "./ledger.ts";
import { csvLine, usageCsvLine } from "../presenters/billing.ts";
import { dailyUsage, listUsage, usageByUser } from "./usageReports.ts";

const at = (iso: string) => Date.parse(iso);

function row(overrides: Partial<LedgerRow>): LedgerRow {
  const started = overrides.started_at ?? at("2025-02-10T12:00:00Z");
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
    cache_hit_tokens: 10_000,
    cache_miss_tokens: 2_000,
    reasoning_tokens: 2_500,
    answer_tokens: 500,
    reserved_micros: 20_000,
    cost_micros: 9_070,
    charged_micros: 9_070,
    started_at: started,
    ended_at: started + 1000,
    holder: null,
    lease_until: null,
    ...overrides,
  };
}

async function insert(store: TestStore, rows: LedgerRow[]) {
  await store.db.insertInto("usage_ledger").values(rows).execute();
}

forEachDatabase("daily usage groups by local day and model, with what the cache saved", async (store) => {
  await insert(store, [
    row({ started_at: at("2025-02-10T15:59:00Z") }), // 23:59 in Beijing: the 10th
    row({ started_at: at("2025-02-10T16:00:00Z") }), // 00:00 in Beijing: the 11th
    row({ started_at: at("2025-02-10T17:00:00Z"), model: "other", cost_micros: 5, charged_micros: 0, billed: 0 }),
    row({ started_at: at("2025-02-10T18:00:00Z"), user_id: "bob" }),
  ]);
  const days = await dailyUsage(store.db, { userId: "alice" }, "Asia/Shanghai");
  assert.deepEqual(
    days.map((d) => [d.date, d.model, d.requests, d.costMicros, d.chargedMicros]),
    [
      ["2025-02-10", "r1", 1, 9_070, 9_070],
      ["2025-02-11", "other", 1, 5, 0],
      ["2025-02-11", "r1", 1, 9_070, 9_070],
    ],
  );
  // 10_000 hits × ($0.55 − $0.14)/M = $0.0041 saved per request.
  assert.equal(days[0]!.cacheSavedMicros, 4_100);
  assert.equal(days[0]!.cacheHitTokens + days[0]!.cacheMissTokens + days[0]!.reasoningTokens + days[0]!.answerTokens, 15_000);
  // The same rows in UTC all fall on the 10th.
  assert.deepEqual([...new Set((await dailyUsage(store.db, { userId: "alice" }, "UTC")).map((d) => d.date))], ["2025-02-10"]);
});

forEachDatabase("listing filters and pages newest first; per-user totals rank the biggest spenders", async (store) => {
  const rows = Array.from({ length: 7 }, (_, i) => row({ started_at: at("2025-02-10T00:00:00Z") + i * 60_000, status: i === 3 ? "stopped" : "completed" }));
  await insert(store, [...rows, row({ user_id: "bob", cost_micros: 100_000, charged_micros: 100_000, reserved_micros: 100_000 }), row({ user_id: null, billed: 0, charged_micros: 0 })]);
  const first = await listUsage(store.db, { userId: "alice" }, { limit: 3 });
  const second = await listUsage(store.db, { userId: "alice" }, { limit: 3, before: first.at(-1)! });
  const third = await listUsage(store.db, { userId: "alice" }, { limit: 3, before: second.at(-1)! });
  assert.deepEqual([...first, ...second, ...third].map((r) => r.id), rows.map((r) => r.id).reverse());
  assert.equal((await listUsage(store.db, { userId: "alice", status: "stopped" }, { limit: 10 })).length, 1);
  assert.equal((await listUsage(store.db, { userId: "alice", from: rows[2]!.started_at, to: rows[5]!.started_at }, { limit: 10 })).length, 3);
  assert.equal((await listUsage(store.db, { userId: null }, { limit: 10 })).length, 1, "the local operator's rows");
  await assert.rejects(listUsage(store.db, {}, { limit: 0 }), /limit/);

  const totals = await usageByUser(store.db, {});
  assert.deepEqual(
    totals.map((t) => [t.userId, t.requests, t.costMicros, t.chargedMicros]),
    [
      ["bob", 1, 100_000, 100_000],
      ["alice", 7, 7 * 9_070, 7 * 9_070],
      [null, 1, 9_070, 0],
    ],
  );
  assert.equal(totals[1]!.tokens, 7 * 15_000);
  assert.equal(totals[1]!.cacheSavedMicros, 7 * 4_100);
  assert.equal(totals[1]!.lastRequestAt, rows[6]!.started_at);
});

test("CSV lines quote what needs quoting and defuse spreadsheet formulas", () => {
  assert.equal(csvLine(["plain", "a,b", 'say "hi"', "line\nbreak", "=1+1", "-2", "@x"]), 'plain,"a,b","say ""hi""","line\nbreak",\'=1+1,\'-2,\'@x\r\n');
  const line = usageCsvLine(row({ id: "id-1", started_at: at("2025-02-10T16:30:00Z"), price_window: "16:30-00:30" }));
  assert.equal(line, "id-1,2025-02-10T16:30:00.000Z,2025-02-10T16:30:01.000Z,completed,r1,local,,pro,10000,2000,2500,500,16:30-00:30,0.14,0.55,2.19,0.00907,0.00907,0,0.00\r\n");
});

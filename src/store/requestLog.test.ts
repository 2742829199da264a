import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import { listRequests, MAX_LIST_LIMIT, recordRequest, type RequestLogEntry } from "./requestLog.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const full: RequestLogEntry = {
  created_at: Date.UTC(2200, 0, 1), // 7.26e12: needs more than 32 bits
  model: "deepseek-r1-distill",
  engine: "remote:upstream-a",
  status: 429,
  error_code: "rate_limit_exceeded",
  stream: 1,
  prompt_tokens: 2_000_000_000,
  completion_tokens: 123_456,
  reasoning_tokens: 100_000,
  cache_hit_tokens: 1_999_999_000,
  cache_miss_tokens: 1_000,
  queue_ms: 2 ** 33 + 1, // > int4: bigint columns must keep it exactly
  ttft_ms: 2 ** 32,
  total_ms: Number.MAX_SAFE_INTEGER,
  user_id: "user-1",
  api_key_id: "key-1",
  client_ip: "2001:db8::1",
};

forEachDatabase("recordRequest round-trips every field, big integers included", async (store) => {
  const stored = await recordRequest(store.db, full);
  assert.match(stored.id, UUID_V7);
  const [row] = await listRequests(store.db, { limit: 10 });
  assert.deepEqual(row, { ...full, id: stored.id });
  assert.deepEqual(row, stored);
  assert.equal(typeof row?.total_ms, "number");
});

forEachDatabase("recordRequest fills defaults for the optional fields", async (store) => {
  const before = Date.now();
  const stored = await recordRequest(store.db, { model: "m", engine: "local", status: 200 });
  const [row] = await listRequests(store.db, { limit: 1 });
  assert.deepEqual(row, stored);
  assert.ok(stored.created_at >= before && stored.created_at <= Date.now());
  assert.deepEqual(
    { ...stored, id: undefined, created_at: undefined },
    {
      id: undefined,
      created_at: undefined,
      model: "m",
      engine: "local",
      status: 200,
      error_code: null,
      stream: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      reasoning_tokens: 0,
      cache_hit_tokens: 0,
      cache_miss_tokens: 0,
      queue_ms: 0,
      ttft_ms: null,
      total_ms: 0,
      user_id: null,
      api_key_id: null,
      client_ip: null,
    },
  );
});

forEachDatabase("recordRequest rejects values the columns cannot hold, naming the field", async (store) => {
  const base = { model: "m", engine: "local", status: 200 };
  await assert.rejects(recordRequest(store.db, { ...base, prompt_tokens: -1 }), /request_log\.prompt_tokens must be a non-negative integer/);
  await assert.rejects(recordRequest(store.db, { ...base, total_ms: 1.5 }), /request_log\.total_ms/);
  await assert.rejects(recordRequest(store.db, { ...base, queue_ms: 2 ** 53 }), /request_log\.queue_ms/);
  await assert.rejects(recordRequest(store.db, { ...base, status: 42 }), /request_log\.status must be an HTTP status/);
  await assert.rejects(recordRequest(store.db, { ...base, stream: 2 as 1 }), /request_log\.stream must be 0 or 1/);
  await assert.rejects(recordRequest(store.db, { ...base, model: "" }), /request_log\.model/);
  assert.deepEqual(await listRequests(store.db, { limit: 10 }), []);
});

forEachDatabase("listRequests pages newest first without skipping or repeating rows that share a timestamp", async (store) => {
  // 3 timestamps x 4 rows each, inserted in shuffled order.
  const times = [1_000, 2_000, 3_000];
  const entries = times.flatMap((created_at) =>
    Array.from({ length: 4 }, (_, i) => ({ created_at, model: `m${created_at}-${i}`, engine: "local", status: 200 })),
  );
  for (const e of [...entries].sort(() => Math.random() - 0.5)) await recordRequest(store.db, e);

  const seen: { created_at: number; id: string }[] = [];
  let page = await listRequests(store.db, { limit: 5 });
  while (page.length > 0) {
    seen.push(...page);
    page = await listRequests(store.db, { limit: 5, before: page.at(-1) });
  }
  assert.equal(seen.length, 12);
  assert.equal(new Set(seen.map((r) => r.id)).size, 12);
  const expected = [...seen].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
  assert.deepEqual(seen, expected);
  assert.deepEqual(
    seen.map((r) => r.created_at),
    [3_000, 3_000, 3_000, 3_000, 2_000, 2_000, 2_000, 2_000, 1_000, 1_000, 1_000, 1_000],
  );
});

forEachDatabase("listRequests filters by user", async (store) => {
  await recordRequest(store.db, { model: "m", engine: "local", status: 200, user_id: "alice", created_at: 1 });
  await recordRequest(store.db, { model: "m", engine: "local", status: 200, user_id: "bob", created_at: 2 });
  await recordRequest(store.db, { model: "m", engine: "local", status: 200, user_id: "alice", created_at: 3 });
  await recordRequest(store.db, { model: "m", engine: "local", status: 200, created_at: 4 });
  const alice = await listRequests(store.db, { limit: 10, user_id: "alice" });
  assert.deepEqual(
    alice.map((r) => [r.user_id, r.created_at]),
    [
      ["alice", 3],
      ["alice", 1],
    ],
  );
});

forEachDatabase("listRequests rejects a limit out of range", async (store) => {
  await assert.rejects(listRequests(store.db, { limit: 0 }), /limit must be an integer from 1 to 1000/);
  await assert.rejects(listRequests(store.db, { limit: MAX_LIST_LIMIT + 1 }), RangeError);
  await assert.rejects(listRequests(store.db, { limit: 2.5 }), RangeError);
});

forEachDatabase("recordRequest joins the caller's transaction", async (store) => {
  await assert.rejects(
    store.db.transaction().execute(async (trx) => {
      await recordRequest(trx, { model: "rolled-back", engine: "local", status: 200 });
      throw new Error("ledger write failed");
    }),
    /ledger write failed/,
  );
  await store.db.transaction().execute((trx) => recordRequest(trx, { model: "committed", engine: "local", status: 200 }));
  assert.deepEqual(
    (await listRequests(store.db, { limit: 10 })).map((r) => r.model),
    ["committed"],
  );
});

forEachDatabase("concurrent inserts from two stores lose no rows", async (store) => {
  const other = await store.openAnother();
  const N = 200;
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      recordRequest(i % 2 ? store.db : other.db, { model: `m${i}`, engine: "local", status: 200, created_at: i }),
    ),
  );
  const rows = await listRequests(store.db, { limit: MAX_LIST_LIMIT });
  assert.equal(rows.length, N);
  assert.deepEqual(
    rows.map((r) => r.model).sort(),
    Array.from({ length: N }, (_, i) => `m${i}`).sort(),
  );
});

/**
 * The pipeline's stages with real parts: a generated scripted model in llama.cpp, real limits, a
 * real Meter on SQLite and PostgreSQL. Each refusal must come from its own stage, in order, and
 * leave exactly its trace; the settlement must commit before the last event is released, and one
 * that cannot commit must release its reservation instead of being renewed for ever.
 */
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import { LOCAL, type Actor } from "../auth/actor.ts";
import { createApiKey, revokeApiKey } from "../auth/apiKeys.ts";
import { insertUser } from "../auth/users.ts";
import { Meter } from "../billing/meter.ts";
import { LocalEngine } from "../engines/local/localEngine.ts";
import { LocalModel } from "../engines/local/localModel.ts";
import { ensureModel } from "../gguf/catalog.ts";
import { ModelRouter } from "../engines/router.ts";
import { ServiceError } from "../errors.ts";
import { limitsConfigSchema } from "../limits/config.ts";
import { identityOf } from "../limits/identity.ts";
import { Limits } from "../limits/limits.ts";
import { MemoryBucketStore } from "../limits/tokenBucket.ts";
import { Serving, type ServingDeps } from "./completion.ts";
import type { CompletionInput, CompletionRecorder } from "./types.ts";

let model: LocalModel;
let router: ModelRouter;
before(async () => {
  model = await LocalModel.load({ id: "scripted", path: await ensureModel("scripted"), threads: 1, parallel: 2, contextSize: 2048 });
  router = new ModelRouter([new LocalEngine([model])]);
});
after(() => model.dispose());

/** Statuses as the HTTP layer would give them (the pipeline only logs them). */
const STATUS: Record<string, number> = { unauthenticated: 401, invalid_request: 400, forbidden: 403, not_found: 404, rate_limited: 429, unavailable: 503 };
const describeError = (e: unknown) => (e instanceof ServiceError ? { status: STATUS[e.kind] ?? 500, code: e.code } : { status: 500, code: "internal_error" });

function pipeline(store: TestStore, extra: Partial<ServingDeps> = {}) {
  const limits = new Limits({
    config: limitsConfigSchema.parse({
      perIp: { requestsPerMinute: 2, tokensPerMinute: 0 },
      perKey: { requestsPerMinute: 0, tokensPerMinute: 0 },
      perUser: { requestsPerMinute: 0, tokensPerMinute: 0 },
    }),
    store: new MemoryBucketStore(),
    capacityOf: (m) => router.capacity(m),
  });
  const meter = new Meter(store.db, { timeZone: "UTC", defaultPlanId: "free", leaseMs: 300, defaultMaxOutputTokens: 1000 });
  const serving = new Serving({ router, limits, meter, db: store.db, describeError, ...extra });
  return { serving, limits, meter };
}

function input(ip: string, content = "What is the answer?", extra: Partial<CompletionInput> = {}, actor: Actor = LOCAL): CompletionInput {
  return {
    actor,
    identity: identityOf(actor, ip),
    clientIp: ip,
    generation: { model: "scripted", messages: [{ role: "user", content }] },
    stream: false,
    ...extra,
  };
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof ServiceError, `expected a refusal, got ${String(error)}`);
  return error;
}

async function drain(iterable: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of iterable);
}

const tokenized = () => model.stats().promptTokenizations;

async function books(store: TestStore) {
  const log = await store.db.selectFrom("request_log").select(["status", "error_code"]).orderBy("created_at").execute();
  const ledger = await store.db.selectFrom("usage_ledger").select(["status"]).execute();
  return { log: log.map((r) => `${r.status}:${r.error_code ?? ""}`), ledger: ledger.map((r) => r.status) };
}

forEachDatabase("each refusal comes from its own stage, in order, and leaves only its trace", async (store) => {
  const { serving, limits } = pipeline(store, {
    planOf: async (actor) =>
      actor.kind === "user"
        ? { id: "free", name: "Free", billed: false, allowedModels: ["another-model"], dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] }
        : null,
  });
  const start = tokenized();

  // resolve: an unknown model is 404 before anything is counted or tokenized.
  const unknown = await refusal(serving.start({ ...input("1.1.1.1"), generation: { model: "nope", messages: [{ role: "user", content: "x" }] } }));
  assert.equal(unknown.code, "model_not_found");
  // authorize: the plan refuses (403) before the rate limit counts the request.
  const user: Actor = { kind: "user", userId: "u1", role: "user", apiKeyId: null, sessionId: "s", planId: "free" };
  const denied = await refusal(serving.start(input("2.2.2.2", "x", {}, user)));
  assert.deepEqual([denied.kind, denied.code], ["forbidden", "model_not_allowed"]);
  assert.equal(tokenized(), start, "nothing tokenized for refusals before admission");

  // admit: the rate limit (2 per minute per IP) refuses the third request before it is tokenized.
  for (let i = 0; i < 2; i++) await drain((await serving.start(input("2.2.2.2"))).events());
  assert.equal(tokenized(), start + 2, "one tokenization per request that ran");
  const limited = await refusal(serving.start(input("2.2.2.2")));
  assert.equal(limited.kind, "rate_limited");
  assert.equal(tokenized(), start + 2);

  // prepare: a prompt that only tokenizing shows to be too long is refused after admission, and its place is freed.
  const long = await refusal(serving.start({ ...input("3.3.3.3"), generation: { model: "scripted", messages: [{ role: "user", content: "hello ".repeat(2100) }] } }));
  assert.equal(long.code, "context_length_exceeded");
  assert.equal(tokenized(), start + 3);
  assert.ok(limits.load().every((q) => q.running === 0 && q.queued === 0), "the refused request holds no place");

  const { log, ledger } = await books(store);
  assert.deepEqual(log, ["404:model_not_found", "403:model_not_allowed", "200:", "200:", "429:rate_limit_requests", "400:context_length_exceeded"]);
  assert.deepEqual(ledger, ["completed", "completed"], "only requests that were reserved have ledger rows, settled once");
});

forEachDatabase("the settlement (with the surface's own writes) commits before the last event is released", async (store) => {
  const { serving } = pipeline(store);
  const order: string[] = [];
  const recorder: CompletionRecorder = {
    started: async (model) => void order.push(`started ${model.id}`),
    event: (e) => void (e.type === "done" && order.push("done event")),
    beforeSettle: async () => void order.push("before settle"),
    settle: async (trx, outcome) => {
      order.push(`settle ${outcome.status}`);
      await trx.selectFrom("usage_ledger").select("id").execute();
    },
  };
  const completion = await serving.start(input("4.4.4.4", "What is the answer?", { recorder }));
  for await (const event of completion.events()) {
    if (event.type === "done") order.push("consumer saw done");
  }
  order.push("iterator finished");
  const log = await store.db.selectFrom("request_log").selectAll().execute();
  assert.equal(log.length, 1);
  assert.deepEqual(order, ["started scripted", "done event", "consumer saw done", "before settle", "settle 200", "iterator finished"]);
});

forEachDatabase("a settlement that cannot commit releases the reservation (charged nothing) and says so", async (store) => {
  const { serving, meter } = pipeline(store, { settleAttempts: 2 });
  await meter.start();
  try {
    const recorder: CompletionRecorder = {
      settle: async () => {
        throw new Error("database went away");
      },
    };
    const completion = await serving.start(input("5.5.5.5", "What is the answer?", { recorder }));
    assert.equal(meter.liveCharges(), 1);
    const events: string[] = [];
    for await (const event of completion.events()) events.push(event.type === "error" ? `error:${event.error.code}` : event.type);
    assert.equal(events.at(-1), "error:settlement_failed", "the surface is told before its end marker");
    assert.equal(meter.liveCharges(), 0, "the lease is no longer renewed");
    // The rolled-back settlement left the ledger row open; once its lease runs out the sweep closes it, unbilled.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await meter.sweep();
    const rows = await store.db.selectFrom("usage_ledger").select(["status", "charged_micros"]).execute();
    assert.deepEqual(rows, [{ status: "interrupted", charged_micros: 0 }]);
    assert.equal((await store.db.selectFrom("request_log").selectAll().execute()).length, 0, "nothing half-written");
  } finally {
    await meter.close();
  }
});

forEachDatabase("a revoked key or a disabled account ends its running completions within the check interval", async (store) => {
  const { serving } = pipeline(store, { credentialCheckMs: 50 });
  const user = await insertUser(store.db, { username: "cut", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  const { row: key } = await createApiKey(store.db, { userId: user.id, name: "k", models: null, expiresAt: null });
  const actor: Actor = { kind: "user", userId: user.id, role: "user", apiKeyId: key.id, sessionId: null, planId: null };

  const byKey = await serving.start(input("6.6.6.6", "What is the answer?", {}, actor));
  await revokeApiKey(store.db, key.id);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const revoked = await refusal(drain(byKey.events()));
  assert.deepEqual([revoked.kind, revoked.code], ["unauthenticated", "api_key_revoked"]);

  const bySession = await serving.start(input("6.6.6.7", "What is the answer?", {}, { ...actor, apiKeyId: null, sessionId: "s" }));
  await store.db.updateTable("users").set({ status: "disabled" }).where("id", "=", user.id).execute();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const disabled = await refusal(drain(bySession.events()));
  assert.equal(disabled.code, "account_disabled");

  const { log, ledger } = await books(store);
  assert.deepEqual(log, ["401:api_key_revoked", "401:account_disabled"]);
  assert.deepEqual(ledger, ["failed", "failed"], "settled once each, per the rule for failed requests");
  serving.close();
});

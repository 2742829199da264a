/**
 * A fleet model's configured `contextLength`: a real Sputnik node (the scripted model, a
 * 2048-token context) behind a gateway, a billed user with an API key. Without `contextLength`
 * the gateway cannot know the node's context and imposes `billing.defaultMaxOutputTokens` on a
 * request without max_tokens — more than the node's context holds, so the node refuses it. With
 * it, /v1/models shows the context, nothing is imposed (the node stops at its context, as a local
 * model does) and the reservation covers that whole bound; a max_tokens that cannot fit is refused
 * by the gateway before anything is sent.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { PasswordHasher } from "../src/auth/passwords.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit } from "../src/billing/balances.ts";
import { savePlan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { costMicros } from "../src/billing/pricing.ts";
import { promptTokenBound } from "../src/engines/remote/remoteEngine.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { startTestService, type TestService } from "./support/service.ts";

const PRICES = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
const NODE_CONTEXT = 2048;
let node: TestService;
let gateway: TestService;
let key = "";

before(async () => {
  node = await startTestService({ models: ["scripted"], config: { contextSize: NODE_CONTEXT } });
  const replicas = [{ baseUrl: `${node.url}/v1`, apiKey: node.localKey!, name: "node" }];
  gateway = await startTestService({
    models: [],
    signupMode: null,
    config: {
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      // More than the node's whole context: what a gateway that does not know it would send.
      billing: { defaultMaxOutputTokens: 4096 },
      remoteModels: [
        { id: "blind", upstreamModel: "scripted", replicas },
        { id: "sized", upstreamModel: "scripted", contextLength: NODE_CONTEXT, replicas },
      ],
    },
  });
  const db = gateway.store.db;
  await savePlan(db, { id: "pro", name: "Pro", billed: true, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
  await savePriceSet(db, { model: "*", base: PRICES, windows: [] }, null);
  const passwordHash = await new PasswordHasher(TEST_PASSWORD_HASHING).hash(TEST_PASSWORD);
  const user = await insertUser(db, { username: "sized", email: null, passwordHash, role: "user", status: "active", planId: "pro" });
  await addCredit(db, { userId: user.id, kind: "topped_up", amountMicros: 1_000_000_000, source: "admin" });
  key = (await createApiKey(db, { userId: user.id, name: "sized", models: null, expiresAt: null })).key;
});

after(async () => {
  await gateway?.stop();
  await node?.stop();
});

const messages = [{ role: "user", content: "What is 2 plus 3?" }];

async function ask(body: Record<string, unknown>) {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages, ...body }),
  });
  return { status: response.status, body: (await response.json()) as { error?: { code: string; param: string | null; message: string }; usage?: { completion_tokens: number } } };
}

const sentToNode = () => gateway.router.stats().flatMap((a) => a.replicas ?? []).reduce((sum, r) => sum + r.requests, 0);

test("/v1/models shows a fleet model's configured context length, and none where it is not configured", async () => {
  const list = (await (await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: Array<{ id: string; context_length?: number }> };
  const byId = new Map(list.data.map((m) => [m.id, m]));
  assert.equal(byId.get("sized")?.context_length, NODE_CONTEXT);
  assert.equal(byId.get("blind")?.context_length, undefined);
});

test("without max_tokens: the default bound overflows the node's context when the gateway does not know it; with contextLength nothing is imposed and the whole bound is reserved", async () => {
  const blind = await ask({ model: "blind" });
  assert.equal(blind.status, 400, JSON.stringify(blind.body));
  assert.match(blind.body.error!.message, /tokens are left|context/, "the node refused the imposed max_tokens");

  const sized = await ask({ model: "sized" });
  assert.equal(sized.status, 200, JSON.stringify(sized.body));
  assert.ok(sized.body.usage!.completion_tokens > 0);
  const row = await gateway.store.db.selectFrom("usage_ledger").selectAll().where("model", "=", "sized").executeTakeFirstOrThrow();
  // The prompt size is an upper bound here (no upstream tokenizer), so the output the context
  // leaves is bounded by the whole context less the one token any prompt has.
  const bound = promptTokenBound(messages.map((m) => ({ ...m, role: "user" as const })));
  assert.equal(row.reserved_micros, costMicros({ cacheHit: 0, cacheMiss: bound, output: NODE_CONTEXT - 1 }, PRICES));
  assert.equal(row.status, "completed");
  assert.ok(row.charged_micros > 0 && row.charged_micros < row.reserved_micros);
});

test("a max_tokens that cannot fit the configured context is refused by the gateway, naming max_tokens, before anything is sent", async () => {
  const before = sentToNode();
  const refused = await ask({ model: "sized", max_tokens: NODE_CONTEXT });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error!.code, "context_length_exceeded");
  assert.equal(refused.body.error!.param, "max_tokens");
  assert.equal(sentToNode(), before, "the node was not asked");
  const fits = await ask({ model: "sized", max_tokens: 64 });
  assert.equal(fits.status, 200, JSON.stringify(fits.body));
});

test("/metrics exports the fleet's routing time as a histogram, one observation per request sent", async () => {
  const sent = gateway.router.stats().find((a) => a.model === "sized")!.replicas!.reduce((sum, r) => sum + r.requests, 0);
  assert.ok(sent >= 2);
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const series = [...text.matchAll(/^sputnik_fleet_routing_seconds_bucket\{model="sized",le="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  assert.ok(series.length >= 10, text.split("\n").filter((l) => l.includes("routing")).join("\n"));
  const counts = series.map(([, n]) => n);
  assert.deepEqual([...counts].sort((a, b) => a - b), counts, "cumulative buckets never decrease");
  assert.deepEqual(series.at(-1), ["+Inf", sent]);
  assert.match(text, new RegExp(`^sputnik_fleet_routing_seconds_count\\{model="sized"\\} ${sent}$`, "m"));
  const sum = Number(/^sputnik_fleet_routing_seconds_sum\{model="sized"\} (\S+)$/m.exec(text)![1]);
  assert.ok(sum > 0 && sum < sent, `a positive routing time under a second per request (${sum} s for ${sent})`);
});

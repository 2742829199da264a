/**
 * POST /v1/embeddings end to end, with the official `openai` SDK and raw fetch, against real
 * servers: `node` serves the generated "embed" model (src/gguf/embedModel.ts: random weights, so
 * the vectors mean nothing but are real) through node-llama-cpp's embedding context, and the
 * chat-only "scripted" model; `gateway` serves nothing itself and passes embedding requests to
 * `node` as an upstream (a remote model and a fleet model). Metering (ledger + request log) and
 * policies (key scope 404, plan 403) as for completions.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { insertUser } from "../src/auth/users.ts";
import type { LedgerRow } from "../src/billing/ledger.ts";
import { savePlan, type Plan } from "../src/billing/plans.ts";
import type { LocalEngine } from "../src/engines/local/localEngine.ts";
import { EMBED_SHAPE } from "../src/gguf/embedModel.ts";
import { EMBEDDING_LIMITS } from "../src/http/openai/embeddings.ts";
import { startTestService, type TestService } from "./support/service.ts";

let node: TestService;
let gateway: TestService;
let openai: OpenAI;

before(async () => {
  node = await startTestService({ models: ["embed", "scripted"], config: { localEngine: { models: { embed: { embeddings: true } } } } });
  const upstream = { baseUrl: `${node.url}/v1`, apiKey: node.localKey! };
  gateway = await startTestService({
    models: [],
    config: {
      remoteModels: [
        { id: "remote-embed", ...upstream, upstreamModel: "embed", embeddings: true },
        { id: "remote-chat", ...upstream, upstreamModel: "scripted" },
        { id: "fleet-embed", upstreamModel: "embed", embeddings: true, replicas: [upstream] },
      ],
    },
  });
  openai = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: node.localKey!, maxRetries: 0 });
});
after(async () => {
  await gateway?.stop();
  await node?.stop();
});

async function post(service: TestService, body: unknown, auth: Record<string, string> = service.localAuth) {
  const response = await fetch(`${service.url}/v1/embeddings`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** Tokens the model evaluates for a text: its tokens plus the begin-of-sequence token its tokenizer adds. */
function tokenCount(text: string): number {
  const model = (node.router.engineFor("embed") as LocalEngine).get("embed")!;
  return model.model.tokenize(text).length + 1;
}

const norm = (v: number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
const closeTo = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-6);

test("/v1/models marks the models that embed, with their vector length", async () => {
  const { data } = await openai.models.list();
  const embed = data.find((m) => m.id === "embed") as any;
  assert.equal(embed.embeddings, true);
  assert.equal(embed.embedding_dimensions, EMBED_SHAPE.embedding);
  assert.equal((data.find((m) => m.id === "scripted") as any).embeddings, undefined);
});

test("float vectors: OpenAI's shape, the model's dimension, unit length, deterministic, different texts differ", async () => {
  const { status, body } = await post(node, { model: "embed", input: ["the cat sat on the mat", "the cat sat on the mat", "a quick brown fox"], encoding_format: "float" });
  assert.equal(status, 200);
  assert.equal(body.object, "list");
  assert.equal(body.model, "embed");
  assert.deepEqual(body.data.map((d: any) => [d.object, d.index]), [["embedding", 0], ["embedding", 1], ["embedding", 2]]);
  const [a, b, c] = body.data.map((d: any) => d.embedding as number[]);
  assert.equal(a.length, EMBED_SHAPE.embedding);
  for (const v of [a, b, c]) assert.ok(Math.abs(norm(v) - 1) < 1e-6, `unit length, got ${norm(v)}`);
  assert.deepEqual(a, b, "the same text gives the same vector");
  assert.ok(!closeTo(a, c), "different texts give different vectors");
  const expected = tokenCount("the cat sat on the mat") * 2 + tokenCount("a quick brown fox");
  assert.deepEqual(body.usage, { prompt_tokens: expected, total_tokens: expected });

  // A later request (another evaluation on the kept context) gives the same vector again.
  const again = await post(node, { model: "embed", input: "the cat sat on the mat" });
  assert.ok(closeTo(again.body.data[0].embedding, a));
});

test("base64 is little-endian float32 (raw), and the SDK, which asks for base64 by default, decodes it to the float vector", async () => {
  const text = "hello world";
  const float = (await post(node, { model: "embed", input: text })).body.data[0].embedding as number[];
  const raw = await post(node, { model: "embed", input: text, encoding_format: "base64" });
  assert.equal(raw.status, 200);
  const encoded = raw.body.data[0].embedding;
  assert.equal(typeof encoded, "string");
  const bytes = Buffer.from(encoded, "base64");
  assert.equal(bytes.length, EMBED_SHAPE.embedding * 4);
  const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
  assert.deepEqual(decoded, float.map((x) => Math.fround(x)));

  const sdk = await openai.embeddings.create({ model: "embed", input: text });
  assert.deepEqual(sdk.data[0]!.embedding, float.map((x) => Math.fround(x)));
  const sdkFloat = await openai.embeddings.create({ model: "embed", input: text, encoding_format: "float" });
  assert.deepEqual(sdkFloat.data[0]!.embedding, float);
  assert.equal(sdk.usage.prompt_tokens, tokenCount(text));
});

test("batches keep input order; token arrays embed like the text they encode", async () => {
  const texts = ["red", "green apple", "blue river in the mountain", "dog"];
  const batch = await openai.embeddings.create({ model: "embed", input: texts, encoding_format: "float" });
  assert.deepEqual(batch.data.map((d) => d.index), [0, 1, 2, 3]);
  for (const [i, text] of texts.entries()) {
    const one = await openai.embeddings.create({ model: "embed", input: text, encoding_format: "float" });
    assert.ok(closeTo(batch.data[i]!.embedding, one.data[0]!.embedding), `item ${i} is the vector of "${text}"`);
  }
  assert.equal(batch.usage.prompt_tokens, texts.reduce((sum, t) => sum + tokenCount(t), 0));

  const model = (node.router.engineFor("embed") as LocalEngine).get("embed")!;
  const ids = model.model.tokenize("green apple").map(Number);
  const single = await openai.embeddings.create({ model: "embed", input: ids, encoding_format: "float" });
  assert.ok(closeTo(single.data[0]!.embedding, batch.data[1]!.embedding), "a token array embeds as its text");
  const several = await openai.embeddings.create({ model: "embed", input: [ids, model.model.tokenize("dog").map(Number)], encoding_format: "float" });
  assert.ok(closeTo(several.data[1]!.embedding, batch.data[3]!.embedding));
  assert.equal(single.usage.prompt_tokens, ids.length + 1);
});

test("an embedding is metered: one settled ledger row with the input tokens as prompt misses, and its request log row", async () => {
  const db = node.store.db;
  const before = (await db.selectFrom("usage_ledger").select("id").execute()).length;
  const { body } = await post(node, { model: "embed", input: ["meter this text", "and this one"] });
  const rows: LedgerRow[] = await db.selectFrom("usage_ledger").selectAll().orderBy("started_at").execute();
  assert.equal(rows.length, before + 1, "settled before the response was sent");
  const row = rows.at(-1)!;
  assert.equal(row.model, "embed");
  assert.equal(row.status, "completed");
  assert.equal(row.cache_miss_tokens, body.usage.prompt_tokens);
  assert.equal(row.cache_hit_tokens, 0);
  assert.equal(row.answer_tokens + row.reasoning_tokens, 0);
  const log = await db.selectFrom("request_log").selectAll().where("id", "=", row.id).executeTakeFirstOrThrow();
  assert.equal(log.status, 200);
  assert.equal(log.model, "embed");
  assert.equal(log.prompt_tokens, body.usage.prompt_tokens);
  assert.equal(log.completion_tokens, 0);
});

test("refusals name the parameter: unknown model 404, a chat model 400, dimensions, bad input forms", async () => {
  const unknown = await post(node, { model: "nope", input: "x" });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.param, "model");

  const chat = await post(node, { model: "scripted", input: "x" });
  assert.equal(chat.status, 400);
  assert.equal(chat.body.error.code, "model_not_embedding");
  assert.match(chat.body.error.message, /'scripted' does not create embeddings/);
  await assert.rejects(openai.embeddings.create({ model: "scripted", input: "x" }), (error: any) => error.status === 400 && error.param === "model");

  const same = await post(node, { model: "embed", input: "x", dimensions: EMBED_SHAPE.embedding, encoding_format: "float" });
  assert.equal(same.status, 200);
  assert.equal(same.body.data[0].embedding.length, EMBED_SHAPE.embedding);
  const other = await post(node, { model: "embed", input: "x", dimensions: 16 });
  assert.equal(other.status, 400);
  assert.equal(other.body.error.param, "dimensions");
  assert.match(other.body.error.message, /64-dimensional/);

  for (const input of [undefined, [], "", [""], [[]], [1.5], { text: "x" }, ["a", [1, 2]]]) {
    const { status, body } = await post(node, { model: "embed", input });
    assert.equal(status, 400, JSON.stringify(input));
    assert.equal(body.error.param, "input", JSON.stringify(input));
  }
  const format = await post(node, { model: "embed", input: "x", encoding_format: "int8" });
  assert.equal(format.status, 400);
  assert.equal(format.body.error.param, "encoding_format");
});

test("too many inputs, too long an input and out-of-vocabulary ids are refused before tokenizing; too many tokens after, naming input", async () => {
  const model = (node.router.engineFor("embed") as LocalEngine).get("embed")!;
  const tokenizedBefore = model.embeddingTextsTokenized;
  const many = await post(node, { model: "embed", input: Array.from({ length: EMBEDDING_LIMITS.maxInputs + 1 }, () => "x") });
  assert.equal(many.status, 400);
  assert.match(many.body.error.message, /at most 256/);
  const long = await post(node, { model: "embed", input: "x".repeat(EMBEDDING_LIMITS.maxInputChars + 1) });
  assert.equal(long.status, 400);
  assert.equal(long.body.error.param, "input");
  const longIds = await post(node, { model: "embed", input: Array.from({ length: 2048 }, () => 100) });
  assert.equal(longIds.status, 400);
  assert.equal(longIds.body.error.code, "context_length_exceeded");
  const badId = await post(node, { model: "embed", input: [10_000_000] });
  assert.equal(badId.status, 400);
  assert.equal(badId.body.error.code, "invalid_token");
  assert.equal(model.embeddingTextsTokenized, tokenizedBefore, "nothing was tokenized for these");

  // Under the byte bound but over the context once tokenized (one token per "x "): refused naming the input.
  const overContext = await post(node, { model: "embed", input: ["fine", "x ".repeat(3000)] });
  assert.equal(overContext.status, 400);
  assert.equal(overContext.body.error.param, "input");
  assert.match(overContext.body.error.message, /input\[1\] is \d+ tokens long/);
  // The server is fine afterwards.
  assert.equal((await post(node, { model: "embed", input: "still here" })).status, 200);
});

test("remote and fleet models pass through to the upstream's /v1/embeddings, with its vectors and usage, metered at the gateway", async () => {
  const texts = ["hello world", "the lazy dog"];
  const local = await post(node, { model: "embed", input: texts, encoding_format: "float" });
  const before = (await gateway.store.db.selectFrom("usage_ledger").select("id").execute()).length;
  for (const model of ["remote-embed", "fleet-embed"]) {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.localKey!, maxRetries: 0 });
    const remote = await client.embeddings.create({ model, input: texts, encoding_format: "float" });
    assert.equal(remote.model, model);
    assert.ok(closeTo(remote.data[0]!.embedding, local.body.data[0].embedding), model);
    assert.ok(closeTo(remote.data[1]!.embedding, local.body.data[1].embedding), model);
    assert.deepEqual(remote.usage, local.body.usage, model);
    const base64 = await client.embeddings.create({ model, input: texts });
    assert.deepEqual(base64.data[1]!.embedding, local.body.data[1].embedding.map((x: number) => Math.fround(x)));
  }
  const rows = await gateway.store.db.selectFrom("usage_ledger").selectAll().orderBy("started_at").execute();
  assert.equal(rows.length, before + 4);
  assert.equal(rows.at(-1)!.cache_miss_tokens, local.body.usage.prompt_tokens);

  const chat = await post(gateway, { model: "remote-chat", input: "x" });
  assert.equal(chat.status, 400);
  assert.equal(chat.body.error.code, "model_not_embedding");
  // The upstream's refusal comes back as the client's error.
  const dims = await post(gateway, { model: "remote-embed", input: "x", dimensions: 8 });
  assert.equal(dims.status, 400);
  assert.match(dims.body.error.message, /64-dimensional/);
});

// Last: the first account ends local single-user mode on `node`.
test("policies as for completions: a key scoped to other models gets 404, a plan without the model 403", async () => {
  const db = node.store.db;
  const plan: Plan = {
    id: "chat-only",
    name: "Chat only",
    billed: false,
    allowedModels: ["scripted"],
    dailyTokenQuota: null,
    monthlyTokenQuota: null,
    maxThinkingBudget: null,
    concurrencyWeight: 1,
    features: [],
  };
  await savePlan(db, plan);
  const user = await insertUser(db, { username: "embedder", email: null, passwordHash: "unused", role: "user", status: "active", planId: null });
  const scoped = await createApiKey(db, { userId: user.id, name: "scoped", models: ["scripted"], expiresAt: null });
  const open = await createApiKey(db, { userId: user.id, name: "open", models: null, expiresAt: null });
  const hidden = await post(node, { model: "embed", input: "x" }, { authorization: `Bearer ${scoped.key}` });
  assert.equal(hidden.status, 404);
  const allowed = await post(node, { model: "embed", input: "x" }, { authorization: `Bearer ${open.key}` });
  assert.equal(allowed.status, 200);
  const rows = await db.selectFrom("usage_ledger").selectAll().where("user_id", "=", user.id).execute();
  assert.equal(rows.length, 1, "one row, for the allowed request");

  const limited = await insertUser(db, { username: "chatonly", email: null, passwordHash: "unused", role: "user", status: "active", planId: plan.id });
  const key = await createApiKey(db, { userId: limited.id, name: "k", models: null, expiresAt: null });
  const refused = await post(node, { model: "embed", input: "x" }, { authorization: `Bearer ${key.key}` });
  assert.equal(refused.status, 403);
  assert.match(refused.body.error.message, /plan/i);
});

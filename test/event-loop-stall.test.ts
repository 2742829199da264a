/**
 * No single request may stall the server: hostile `response_format` schemas against a real
 * service (in this process, so the event loop measured is the server's own), with /health polled
 * throughout. The reported attack was a schema of one 80,000-value enum: ~30 s of main-thread CPU
 * in grammar creation, /health stalled 44–66 s.
 */
import assert from "node:assert/strict";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { after, before, test } from "node:test";
import { grammarFactoryFor } from "../src/engines/local/grammars.ts";
import { sharedLlama } from "../src/engines/local/llama.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { JSON_SCHEMA_LIMITS, jsonSchemaLimitProblem } from "../src/http/openai/jsonSchemaLimits.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

/** The longest the event loop may go without turning while a hostile request is served. */
const MAX_STALL_MS = 500;

let service: TestService;
let apiKey: string;
before(async () => {
  service = await startTestService({ models: ["scripted-json"], config: { auth: { passwordHashing: TEST_PASSWORD_HASHING } } });
  // A real account and key (not local mode), as a remote attacker would have.
  const admin = new AppClient(service.url);
  const signup = await admin.post("/api/auth/signup", { username: "owner", password: TEST_PASSWORD });
  assert.equal(signup.status, 201, signup.text);
  const key = await admin.post("/api/keys", { name: "stall" });
  assert.equal(key.status, 201, key.text);
  apiKey = key.body.key;
});
after(() => service.stop());

function chat(responseFormat: unknown, extra: Record<string, unknown> = {}) {
  return fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: "scripted-json", messages: [{ role: "user", content: "Answer in JSON" }], response_format: responseFormat, ...extra }),
  });
}

function jsonSchema(schema: Record<string, unknown>) {
  return { type: "json_schema", json_schema: { name: "answer", schema } };
}

/**
 * Runs `work` while the event loop's delay is sampled (10 ms resolution) and /health is polled
 * every 25 ms; returns the worst of each.
 */
async function underWatch<T>(work: () => Promise<T>): Promise<{ result: T; maxLoopDelayMs: number; maxHealthMs: number; healthChecks: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let running = true;
  let maxHealthMs = 0;
  let healthChecks = 0;
  const poller = (async () => {
    while (running) {
      const started = performance.now();
      const response = await fetch(`${service.url}/health`);
      await response.arrayBuffer();
      assert.equal(response.status, 200);
      maxHealthMs = Math.max(maxHealthMs, performance.now() - started);
      healthChecks++;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  try {
    const result = await work();
    return { result, maxLoopDelayMs: histogram.max / 1e6, maxHealthMs, healthChecks };
  } finally {
    running = false;
    await poller;
    histogram.disable();
  }
}

/** 1000 enum values of ~240 characters: at the alternatives bound and near the size bound. */
function enumNearTheBounds(): Record<string, unknown> {
  const values = Array.from({ length: JSON_SCHEMA_LIMITS.maxAlternatives }, (_, i) => `${"option".repeat(40)}-${i}`);
  return { type: "object", properties: { choice: { enum: values } }, required: ["choice"] };
}

test("the largest enum the bounds let through is served without stalling the event loop", async () => {
  const schema = enumNearTheBounds();
  assert.equal(jsonSchemaLimitProblem(schema), null, "within the bounds");
  assert.ok(JSON.stringify(schema).length > 0.9 * JSON_SCHEMA_LIMITS.maxBytes, "near the size bound");
  const watched = await underWatch(async () => {
    const response = await chat(jsonSchema(schema), { max_tokens: 24 });
    return { status: response.status, body: (await response.json()) as any };
  });
  assert.equal(watched.result.status, 200, JSON.stringify(watched.result.body));
  assert.ok(watched.healthChecks > 0);
  assert.ok(watched.maxLoopDelayMs < MAX_STALL_MS, `event loop stalled ${watched.maxLoopDelayMs.toFixed(0)} ms`);
  assert.ok(watched.maxHealthMs < MAX_STALL_MS, `/health took ${watched.maxHealthMs.toFixed(0)} ms`);
});

test("the reported attack (one 80,000-value enum) is refused at once with a 400 naming response_format", async () => {
  const schema = { type: "object", properties: { choice: { enum: Array.from({ length: 80_000 }, (_, i) => `v${i}`) } } };
  assert.ok(JSON.stringify(schema).length > 600_000, "the reported size");
  const watched = await underWatch(async () => {
    const started = performance.now();
    const response = await chat(jsonSchema(schema));
    return { status: response.status, body: (await response.json()) as any, ms: performance.now() - started };
  });
  assert.equal(watched.result.status, 400);
  assert.equal(watched.result.body.error.param, "response_format.json_schema.schema");
  assert.match(watched.result.body.error.message, /response_format is too complex: .*at most 1000/);
  assert.ok(watched.result.ms < 1000, `answered in ${watched.result.ms.toFixed(0)} ms`);
  assert.ok(watched.maxLoopDelayMs < MAX_STALL_MS, `event loop stalled ${watched.maxLoopDelayMs.toFixed(0)} ms`);
});

test("each other bound is a 400 naming the schema", async () => {
  const deep: Record<string, unknown> = {};
  let cursor = deep;
  for (let i = 0; i < 40; i++) cursor = (cursor.items = {}) as Record<string, unknown>;
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["depth", deep, /nested more than 32 levels/],
    ["properties", { type: "object", properties: Object.fromEntries(Array.from({ length: 5001 }, (_, i) => [`p${i}`, {}])) }, /more than 5000 properties/],
    ["string length", { type: "string", description: "d".repeat(9000) }, /9000 characters; at most 8192/],
    ["bytes", { type: "object", properties: Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`p${i}`, { type: "string", description: "d".repeat(800) }])) }, /bytes as JSON; at most 262144/],
    ["oneOf branches", { oneOf: Array.from({ length: 1001 }, (_, i) => ({ const: i })) }, /more than 1000 enum values and oneOf\/anyOf branches/],
  ];
  for (const [name, schema, message] of cases) {
    const response = await chat(jsonSchema(schema));
    const body = (await response.json()) as any;
    assert.equal(response.status, 400, name);
    assert.equal(body.error.param, "response_format.json_schema.schema", name);
    assert.match(body.error.message, message, name);
  }
});

test("a normal json_schema request still works, and the same schema again is served from the grammar cache", async () => {
  const schema = { type: "object", properties: { city: { type: "string" }, answer: { type: "integer" } }, required: ["city", "answer"] };
  const grammars = grammarFactoryFor(await sharedLlama());
  const before = grammars.stats();
  for (let i = 0; i < 2; i++) {
    const response = await chat(jsonSchema(schema));
    const body = (await response.json()) as any;
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.deepEqual(JSON.parse(body.choices[0].message.content), JSON.parse(MODEL_SCRIPTS["scripted-json"]!.answer));
  }
  const stats = grammars.stats();
  assert.equal(stats.misses - before.misses, 1, "built once");
  assert.equal(stats.hits - before.hits, 1, "the second request hit the cache");
});

test("a schema llama.cpp cannot turn into a grammar is a 400 naming response_format", async () => {
  const response = await chat(jsonSchema({ $defs: { a: { $ref: "#/$defs/a" } }, $ref: "#/$defs/a" }));
  const body = (await response.json()) as any;
  assert.equal(response.status, 400);
  assert.equal(body.error.code, "invalid_json_schema");
  assert.equal(body.error.param, "response_format");
});

test("seed: -1 (llama.cpp's 'random') and seeds past 2^32 - 2 are refused, quoting the real range", async () => {
  for (const seed of [-1, 4_294_967_295, 1e20]) {
    const response = await chat({ type: "text" }, { seed });
    const body = (await response.json()) as any;
    assert.equal(response.status, 400, String(seed));
    assert.equal(body.error.param, "seed");
    assert.match(body.error.message, /seed must be an integer from 0 to 4294967294/);
  }
  const ok = await chat({ type: "text" }, { seed: 4_294_967_294 });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
});

test("the reported long-prompt attack (4 × 900k-character messages, 4 at once) is refused from its size, without stalling", async () => {
  const messages = Array.from({ length: 4 }, (_, i) => ({ role: "user", content: `${i} ${"lorem ipsum dolor ".repeat(50_000)}` }));
  assert.ok(messages[0]!.content.length > 900_000);
  const watched = await underWatch(async () => {
    const started = performance.now();
    const responses = await Promise.all(
      Array.from({ length: 4 }, () =>
        fetch(`${service.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
          body: JSON.stringify({ model: "scripted-json", messages }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as any })),
      ),
    );
    return { responses, ms: performance.now() - started };
  });
  for (const { status, body } of watched.result.responses) {
    assert.equal(status, 400, JSON.stringify(body).slice(0, 300));
    assert.deepEqual([body.error.code, body.error.param], ["context_length_exceeded", "messages"]);
    assert.match(body.error.message, /at least \d+ tokens/, "refused from the byte count, before tokenizing");
  }
  assert.ok(watched.maxLoopDelayMs < MAX_STALL_MS, `event loop stalled ${watched.maxLoopDelayMs.toFixed(0)} ms`);
  assert.ok(watched.maxHealthMs < MAX_STALL_MS, `/health took ${watched.maxHealthMs.toFixed(0)} ms`);
});

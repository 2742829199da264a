import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Llama } from "node-llama-cpp";
import { ServiceError } from "../../errors.ts";
import { GrammarFactory } from "./grammars.ts";
import { sharedLlama } from "./llama.ts";

let llama: Llama;
const factories: GrammarFactory[] = [];
before(async () => {
  llama = await sharedLlama({ gpu: false });
});
after(async () => {
  for (const factory of factories) await factory.close();
});

function factory(options: ConstructorParameters<typeof GrammarFactory>[1] = {}): GrammarFactory {
  const made = new GrammarFactory(llama, options);
  factories.push(made);
  return made;
}

/**
 * Runs `work` while a 5 ms ticker watches the event loop; returns its outcome and the longest time
 * the loop went without turning (the last stretch, up to `work`'s end, included).
 */
async function watchingTheLoop<T>(work: () => Promise<T>): Promise<{ result: T | undefined; error: unknown; maxGapMs: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 5);
  let outcome: { result: T | undefined; error: unknown };
  try {
    outcome = { result: await work(), error: undefined };
  } catch (error) {
    outcome = { result: undefined, error };
  }
  clearInterval(ticker);
  return { ...outcome, maxGapMs: Math.max(maxGapMs, performance.now() - last) };
}

const weather = {
  type: "object",
  properties: { city: { type: "string" }, answer: { type: "integer" }, unit: { enum: ["C", "F"] } },
  required: ["city", "answer"],
};

test("a schema's grammar is the one node-llama-cpp builds itself, with the same stop trigger", async () => {
  const grammars = factory();
  const ours = await grammars.forJsonSchema(weather);
  const theirs = await llama.createGrammarForJsonSchema(weather as never);
  assert.equal(ours.grammar, theirs.grammar);
  assert.deepEqual(ours.stopGenerationTriggers.map(String), theirs.stopGenerationTriggers.map(String));
  assert.equal(ours.trimWhitespaceSuffix, theirs.trimWhitespaceSuffix);
});

test("the same schema again comes from the cache; another one is built", async () => {
  const grammars = factory();
  const first = await grammars.forJsonSchema(weather);
  const second = await grammars.forJsonSchema(JSON.parse(JSON.stringify(weather)));
  assert.equal(second, first, "the very same grammar object");
  await grammars.forJsonSchema({ ...weather, properties: { ...weather.properties, extra: { type: "boolean" } } });
  assert.deepEqual(grammars.stats(), { hits: 1, misses: 2, timeouts: 0, cached: 2 });
});

test("the cache is bounded: the least recently used schema is dropped", async () => {
  const grammars = factory({ cacheEntries: 2 });
  const schema = (n: number) => ({ type: "object", properties: { [`p${n}`]: { type: "string" } } });
  await grammars.forJsonSchema(schema(1));
  await grammars.forJsonSchema(schema(2));
  await grammars.forJsonSchema(schema(1)); // touched: now 2 is the oldest
  await grammars.forJsonSchema(schema(3));
  assert.equal(grammars.stats().cached, 2);
  await grammars.forJsonSchema(schema(1));
  assert.equal(grammars.stats().hits, 2, "1 stayed");
  await grammars.forJsonSchema(schema(2));
  assert.equal(grammars.stats().misses, 4, "2 was dropped and built again");
});

test("a schema over the budget is refused as too complex without stalling the loop, then from the cache at once", async () => {
  // The shape of the reported attack (one huge enum), far over the request bounds: the factory is
  // the second line of defence when something bypasses them.
  const hostile = { enum: Array.from({ length: 80_000 }, (_, i) => `v${i}`) };
  const grammars = factory({ budgetMs: 50 });
  await grammars.forJsonSchema(weather); // the worker is up: its start-up is not what is measured
  const first = await watchingTheLoop(() => grammars.forJsonSchema(hostile));
  assert.ok(first.error instanceof ServiceError, String(first.error));
  assert.equal(first.error.kind, "unprocessable");
  assert.equal(first.error.code, "response_format_too_complex");
  assert.equal(first.error.param, "response_format");
  assert.equal(grammars.stats().timeouts, 1);
  // Stringifying and hashing 700 KB is the only work left on this thread.
  assert.ok(first.maxGapMs < 250, `the event loop stalled ${first.maxGapMs.toFixed(0)} ms`);

  const again = await watchingTheLoop(() => grammars.forJsonSchema(hostile));
  assert.equal((again.error as ServiceError).code, "response_format_too_complex");
  assert.equal(grammars.stats().timeouts, 1, "not built again");
  assert.equal(grammars.stats().hits, 1);

  // The terminated worker is replaced for the next schema.
  const fine = await grammars.forJsonSchema({ type: "array", items: { type: "string" } });
  assert.match(fine.grammar, /root ::=/);
});

test("the native parse of a large schema within the request bounds takes milliseconds", async () => {
  // 1000 alternatives that all start at the root (the case whose parse grows with their square)
  // and long values, near the 256 KiB bound: the worst the request schema lets through.
  const schema = { enum: Array.from({ length: 1000 }, (_, i) => `${"x".repeat(240)}-${i}`) };
  assert.ok(JSON.stringify(schema).length > 240_000);
  const grammars = factory();
  await grammars.forJsonSchema(weather);
  const { error, maxGapMs } = await watchingTheLoop(() => grammars.forJsonSchema(schema));
  assert.equal(error, undefined);
  assert.ok(maxGapMs < 250, `the event loop stalled ${maxGapMs.toFixed(0)} ms`);
});

test("a schema llama.cpp cannot parse is an invalid request naming response_format, and stays refused", async () => {
  // node-llama-cpp turns a self-reference into `def0 ::= def0`, which llama.cpp refuses (left recursion).
  const recursive = { $defs: { a: { $ref: "#/$defs/a" } }, $ref: "#/$defs/a" };
  const grammars = factory();
  await assert.rejects(grammars.forJsonSchema(recursive), (error: unknown) => {
    assert.ok(error instanceof ServiceError);
    assert.equal(error.kind, "invalid_request");
    assert.equal(error.code, "invalid_json_schema");
    assert.equal(error.param, "response_format");
    return true;
  });
  await assert.rejects(grammars.forJsonSchema(recursive));
  assert.equal(grammars.stats().hits, 1, "the refusal was cached");
});

test("grammar text over the size bound is refused before llama.cpp parses it", async () => {
  const grammars = factory({ maxGrammarChars: 1000 });
  const schema = { type: "object", properties: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`property${i}`, { type: "string" }])) };
  await assert.rejects(grammars.forJsonSchema(schema), { code: "response_format_too_complex" });
});

test("formats: text has no grammar, json_object is llama.cpp's JSON grammar, read once", async () => {
  const grammars = factory();
  assert.equal(await grammars.forFormat(undefined), undefined);
  assert.equal(await grammars.forFormat({ type: "text" }), undefined);
  const json = await grammars.forFormat({ type: "json_object" });
  assert.match(json!.grammar, /root/);
  assert.equal(await grammars.forFormat({ type: "json_object" }), json);
  const schema = await grammars.forFormat({ type: "json_schema", json_schema: { schema: weather } });
  assert.equal(schema, await grammars.forJsonSchema(weather));
});

/**
 * The tracing module on its own: attribute names as the OpenTelemetry semantic conventions spell
 * them, the config, the generation span's GenAI attributes and the operator's opt-in to message
 * content — with the real SDK and its in-memory exporter. (test/tracing.test.ts runs the whole
 * service against an OTLP/HTTP receiver.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as stable from "@opentelemetry/semantic-conventions";
import * as incubating from "@opentelemetry/semantic-conventions/incubating";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-node";
import { ServiceError } from "../errors.ts";
import type { EngineEvent, GenerationRequest, ModelInfo, Usage } from "../engines/types.ts";
import { GEN_AI, GEN_AI_OPERATION, SEMCONV } from "./attributes.ts";
import { tracingConfigSchema } from "./config.ts";
import { startGenerationSpan } from "./genai.ts";
import { startTracing, tracesUrl } from "./setup.ts";
import { inStage, NO_STAGE, startStage } from "./spans.ts";

test("attribute names are the semantic conventions' own", () => {
  const incubatingValues = new Set(Object.values(incubating));
  for (const [key, name] of Object.entries(GEN_AI)) assert.ok(incubatingValues.has(name), `GEN_AI.${key} = ${name} is a GenAI convention`);
  for (const [key, name] of Object.entries(GEN_AI_OPERATION)) assert.ok(incubatingValues.has(name), `GEN_AI_OPERATION.${key} = ${name}`);
  const stableValues = new Set(Object.values(stable));
  for (const [key, name] of Object.entries(SEMCONV)) assert.ok(stableValues.has(name), `SEMCONV.${key} = ${name} is a stable convention`);
  // The ones the issue names, spelled out.
  assert.equal(GEN_AI.usageCacheReadInputTokens, incubating.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS);
  assert.equal(GEN_AI.usageReasoningOutputTokens, incubating.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS);
  assert.equal(GEN_AI.conversationId, incubating.ATTR_GEN_AI_CONVERSATION_ID);
  assert.equal(GEN_AI.providerName, incubating.ATTR_GEN_AI_PROVIDER_NAME);
});

test("config: off by default; the endpoint is an http(s) base URL that gets /v1/traces", () => {
  const defaults = tracingConfigSchema.parse(undefined);
  assert.deepEqual(defaults, { otlpHeaders: {}, serviceName: "sputnik", sampleRatio: 1, captureMessageContent: false });
  assert.throws(() => tracingConfigSchema.parse({ otlpEndpoint: "ftp://collector:4318" }), /http:\/\/ or https:\/\//);
  assert.throws(() => tracingConfigSchema.parse({ endpoint: "http://collector:4318" }), /endpoint/);
  assert.equal(tracesUrl("http://collector:4318"), "http://collector:4318/v1/traces");
  assert.equal(tracesUrl("http://collector:4318/"), "http://collector:4318/v1/traces");
  assert.equal(tracesUrl("https://otel.example.com/otlp"), "https://otel.example.com/otlp/v1/traces");
  assert.equal(tracesUrl("https://otel.example.com/otlp/v1/traces"), "https://otel.example.com/otlp/v1/traces");
});

const usage: Usage = {
  prompt_tokens: 31,
  completion_tokens: 12,
  total_tokens: 43,
  prompt_cache_hit_tokens: 16,
  prompt_cache_miss_tokens: 15,
  completion_tokens_details: { reasoning_tokens: 5 },
  prompt_tokens_details: { cached_tokens: 16 },
};
const model: ModelInfo = { id: "m1", engine: "remote", ownedBy: "sputnik", reasoning: true };
const chat: GenerationRequest = {
  model: "m1",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Weather in Oslo?" },
    { role: "assistant", content: "", tool_calls: [{ id: "c1", name: "weather", arguments: '{"city":"Oslo"}' }] },
    { role: "tool", content: "rain", tool_call_id: "c1" },
  ],
  maxTokens: 64,
  topK: 40,
  seed: 7,
  routingKey: "conv-123",
};
const events: EngineEvent[] = [
  { type: "reasoning", text: "It said " },
  { type: "reasoning", text: "rain." },
  { type: "content", text: "Rainy" },
  { type: "content", text: " today." },
  { type: "usage", usage },
  { type: "done", finishReason: "stop" },
];

async function traced(captureMessageContent: boolean, run: () => Promise<void> | void): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const tracing = await startTracing(tracingConfigSchema.parse({ captureMessageContent }), { exporter });
  try {
    await run();
    await tracing.flush();
    return [...exporter.getFinishedSpans()];
  } finally {
    await tracing.shutdown();
  }
}

test("the generation span: named '<operation> <model>', request and usage attributes, no content unless opted in", async () => {
  const [span, ...rest] = await traced(false, () => {
    const generation = startGenerationSpan(chat, model, true);
    for (const e of events) generation.event(e);
    generation.end({ usage, finishReason: "stop", failure: null, ttftMs: 250 });
  });
  assert.equal(rest.length, 0);
  assert.equal(span!.name, "chat m1");
  assert.deepEqual(
    { ...span!.attributes },
    {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "sputnik",
      "gen_ai.request.model": "m1",
      "gen_ai.request.stream": true,
      "gen_ai.output.type": "text",
      "gen_ai.conversation.id": "conv-123",
      "gen_ai.request.max_tokens": 64,
      "gen_ai.request.top_k": 40,
      "gen_ai.request.seed": 7,
      "sputnik.engine": "remote",
      "gen_ai.response.model": "m1",
      "gen_ai.response.finish_reasons": ["stop"],
      "gen_ai.response.time_to_first_chunk": 0.25,
      "gen_ai.usage.input_tokens": 31,
      "gen_ai.usage.output_tokens": 12,
      "gen_ai.usage.cache_read.input_tokens": 16,
      "gen_ai.usage.reasoning.output_tokens": 5,
    },
  );
  assert.equal(span!.status.code, 0);
});

test("with captureMessageContent: the prompt and the answer in the conventions' message shape", async () => {
  const [span] = await traced(true, () => {
    const generation = startGenerationSpan(chat, model, false);
    for (const e of events) generation.event(e);
    generation.end({ usage, finishReason: "stop", failure: null, ttftMs: 250 });
  });
  assert.deepEqual(JSON.parse(span!.attributes["gen_ai.input.messages"] as string), [
    { role: "system", parts: [{ type: "text", content: "Be brief." }] },
    { role: "user", parts: [{ type: "text", content: "Weather in Oslo?" }] },
    { role: "assistant", parts: [{ type: "tool_call", id: "c1", name: "weather", arguments: '{"city":"Oslo"}' }] },
    { role: "tool", parts: [{ type: "tool_call_response", id: "c1", response: "rain" }] },
  ]);
  assert.deepEqual(JSON.parse(span!.attributes["gen_ai.output.messages"] as string), [
    { role: "assistant", parts: [{ type: "reasoning", content: "It said rain." }, { type: "text", content: "Rainy today." }], finish_reason: "stop" },
  ]);
});

test("a failed generation and a failed stage are errors with the error's code; stages nest through the context", async () => {
  const refusal = new ServiceError("unavailable", "The queue is full.", { code: "queue_full" });
  const spans = await traced(false, async () => {
    const completion = startGenerationSpan({ model: "m1", messages: [], completion: { prompt: "def f(" } }, undefined, false);
    completion.end({ usage, finishReason: null, failure: new Error("engine crashed"), ttftMs: null });
    await inStage("outer", async () => {
      startStage("inner").end();
      await assert.rejects(inStage("refused", async () => Promise.reject(refusal)));
    });
  });
  const byName = new Map(spans.map((s) => [s.name, s]));
  const completion = byName.get("text_completion m1")!;
  assert.equal(completion.attributes["gen_ai.operation.name"], "text_completion");
  assert.equal(completion.attributes["gen_ai.response.finish_reasons"], undefined);
  assert.equal(completion.attributes["error.type"], "Error");
  assert.equal(completion.status.code, 2);
  const outer = byName.get("outer")!;
  assert.equal(byName.get("inner")!.parentSpanContext?.spanId, outer.spanContext().spanId);
  const refused = byName.get("refused")!;
  assert.equal(refused.parentSpanContext?.spanId, outer.spanContext().spanId);
  assert.deepEqual([refused.status.code, refused.status.message, refused.attributes["error.type"]], [2, "The queue is full.", "queue_full"]);
  assert.equal(refused.events[0]?.name, "exception");
  assert.equal(outer.status.code, 0, "a rejection handled inside the stage is not the stage's failure");
});

test("a wall-clock step in the middle of a request moves none of its stages out of the request's span", async () => {
  const realNow = Date.now;
  const spans = await traced(false, async () => {
    try {
      await inStage("request", async () => {
        // The clock jumps an hour ahead (an NTP step), then a stage starts and ends.
        Date.now = () => realNow() + 3_600_000;
        await inStage("settle", async () => new Promise((resolve) => setTimeout(resolve, 5)));
      });
    } finally {
      Date.now = realNow;
    }
    // A new request anchors again: it agrees with the wall clock as it is now.
    startStage("next request").end();
  });
  const byName = new Map(spans.map((s) => [s.name, s]));
  const ns = (t: readonly [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
  const request = byName.get("request")!;
  const settle = byName.get("settle")!;
  assert.ok(ns(request.startTime) <= ns(settle.startTime) && ns(settle.endTime) <= ns(request.endTime), "the stage lies within the request");
  assert.ok(ns(settle.endTime) - ns(settle.startTime) >= 4_000_000n, "and lasts what it lasted (5 ms)");
  const next = byName.get("next request")!;
  assert.ok(Math.abs(Number(ns(next.startTime) / 1_000_000n) - Date.now()) < 1_000, "a later request reads the wall clock afresh");
});

test("after shutdown the helpers are no-ops again", () => {
  assert.equal(startStage("x"), NO_STAGE);
});

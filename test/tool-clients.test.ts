/**
 * Real clients calling tools, changing only the base URL, against the local engine's scripted
 * tool-calling models (src/gguf/toolScripts.ts: DeepSeek-R1 native call syntax):
 * - the official `@anthropic-ai/sdk`: a tool_use round trip on /anthropic (create and stream,
 *   parallel calls, a forced tool, a malformed call returned as text);
 * - the `openai` SDK's `chat.completions.runTools` loop;
 * - the Vercel AI SDK's `generateText` with tools, several steps;
 * - LangChain's `ChatOpenAI.bindTools`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, jsonSchema, stepCountIs, tool } from "ai";
import OpenAI from "openai";
import { TOOL_SCRIPTS } from "../src/gguf/catalog.ts";
import { thinkingSignature } from "../src/presenters/anthropic.ts";
import { startTestService, type TestService } from "./support/service.ts";

const call = TOOL_SCRIPTS["scripted-tool-call"]!;
const think = TOOL_SCRIPTS["scripted-tool-think"]!;
const parallel = TOOL_SCRIPTS["scripted-tool-parallel"]!;
const malformed = TOOL_SCRIPTS["scripted-tool-malformed"]!;

let service: TestService;
before(async () => {
  service = await startTestService({ models: ["scripted-tool-call", "scripted-tool-think", "scripted-tool-parallel", "scripted-tool-malformed"] });
});
after(() => service.stop());

const WEATHER_SCHEMA = { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] };
const TIME_SCHEMA = { type: "object" as const, properties: { timezone: { type: "string" } }, required: ["timezone"] };
const WEATHER_RESULT = "Sunny, 22 degrees.";

const signed = (thinking: string) => ({ type: "thinking" as const, thinking, signature: thinkingSignature(thinking) });
const input = (args: string) => JSON.parse(args) as Record<string, unknown>;

describe("the Anthropic SDK: tool_use round trips on /anthropic", () => {
  const tools: Anthropic.Tool[] = [
    { name: "get_weather", description: "The weather in a city", input_schema: WEATHER_SCHEMA },
    { name: "get_time", description: "The time in a timezone", input_schema: TIME_SCHEMA },
  ];
  const client = () => new Anthropic({ baseURL: `${service.url}/anthropic`, apiKey: service.localKey!, maxRetries: 0 });

  test("messages.create: thinking, then a tool_use block; the tool_result (with the thinking sent back) gets the final answer", async () => {
    const first = await client().messages.create({ model: "scripted-tool-think", max_tokens: 300, tools, messages: [{ role: "user", content: "What is the weather in Paris?" }] });
    assert.equal(first.stop_reason, "tool_use");
    assert.equal(first.content.length, 2);
    assert.deepEqual(first.content[0], signed(think.reasoning!));
    const use = first.content[1] as Anthropic.ToolUseBlock;
    assert.deepEqual({ ...use, id: "" }, { type: "tool_use", id: "", name: "get_weather", input: input(think.calls[0]!.arguments) });
    assert.match(use.id, /^call_/);

    const second = await client().messages.create({
      model: "scripted-tool-think",
      max_tokens: 300,
      tools,
      messages: [
        { role: "user", content: "What is the weather in Paris?" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: WEATHER_RESULT }] },
      ],
    });
    assert.equal(second.stop_reason, "end_turn");
    assert.deepEqual(second.content, [signed(think.after.reasoning!), { type: "text", text: think.after.answer }]);
  });

  test("messages.stream: two parallel tool_use blocks streamed with input_json_delta; the round trip ends with the answer", async () => {
    const stream = client().messages.stream({ model: "scripted-tool-parallel", max_tokens: 300, tools, messages: [{ role: "user", content: "Weather and time in Paris?" }] });
    const jsonDeltas: string[] = [];
    stream.on("inputJson", (delta) => jsonDeltas.push(delta));
    const first = await stream.finalMessage();
    assert.equal(first.stop_reason, "tool_use");
    assert.deepEqual(
      first.content.map((b) => (b.type === "tool_use" ? { type: b.type, name: b.name, input: b.input } : b)),
      [signed(parallel.reasoning!), ...parallel.calls.map((c) => ({ type: "tool_use", name: c.name, input: input(c.arguments) }))],
    );
    assert.equal(jsonDeltas.join(""), parallel.calls.map((c) => c.arguments).join(""), "the arguments were streamed");
    assert.ok(jsonDeltas.length > 2, "in pieces");

    const uses = first.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    const second = await client()
      .messages.stream({
        model: "scripted-tool-parallel",
        max_tokens: 300,
        tools,
        messages: [
          { role: "user", content: "Weather and time in Paris?" },
          { role: "assistant", content: first.content },
          { role: "user", content: uses.map((u) => ({ type: "tool_result" as const, tool_use_id: u.id, content: [{ type: "text" as const, text: u.name === "get_time" ? "Noon." : WEATHER_RESULT }] })) },
        ],
      })
      .finalMessage();
    assert.deepEqual(second.content, [signed(parallel.after.reasoning!), { type: "text", text: parallel.after.answer }]);
    assert.equal(second.stop_reason, "end_turn");
  });

  test("tool_choice {type:'tool'} forces the call at once: a lone tool_use block, no thinking", async () => {
    const forced = await client().messages.create({
      model: "scripted-tool-think",
      max_tokens: 300,
      tools,
      tool_choice: { type: "tool", name: "get_weather" },
      messages: [{ role: "user", content: "Weather in Paris, now." }],
    });
    assert.equal(forced.stop_reason, "tool_use");
    assert.deepEqual(
      forced.content.map((b) => (b.type === "tool_use" ? { name: b.name, input: b.input } : b)),
      [{ name: "get_weather", input: input(think.calls[0]!.arguments) }],
    );
  });

  test("a malformed call is returned as text with stop_reason end_turn, never a broken tool_use", async () => {
    const message = await client().messages.create({ model: "scripted-tool-malformed", max_tokens: 300, tools, messages: [{ role: "user", content: "Weather in Paris?" }] });
    assert.equal(message.stop_reason, "end_turn");
    assert.deepEqual(message.content, [signed(malformed.reasoning!), { type: "text", text: malformed.malformed! }]);
  });
});

describe("OpenAI-compatible agent clients on /v1", () => {
  test("the openai SDK's chat.completions.runTools completes the loop: call, tool result, final answer", async () => {
    const client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey!, maxRetries: 0 });
    const calls: unknown[] = [];
    const runner = client.chat.completions.runTools({
      model: "scripted-tool-call",
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "The weather in a city",
            parameters: WEATHER_SCHEMA,
            parse: JSON.parse,
            function: (args: { city: string }) => {
              calls.push(args);
              return WEATHER_RESULT;
            },
          },
        },
      ],
    });
    assert.equal(await runner.finalContent(), call.after.answer);
    assert.deepEqual(calls, [input(call.calls[0]!.arguments)]);
    const messages = runner.messages;
    assert.deepEqual(messages.map((m) => m.role), ["user", "assistant", "tool", "assistant"]);
  });

  test("the Vercel AI SDK's generateText with tools runs two steps (call, then answer)", async () => {
    const provider = createOpenAICompatible({ name: "sputnik", baseURL: `${service.url}/v1`, apiKey: service.localKey! });
    const executed: unknown[] = [];
    const result = await generateText({
      model: provider.chatModel("scripted-tool-think"),
      prompt: "What is the weather in Paris?",
      tools: {
        get_weather: tool({
          description: "The weather in a city",
          inputSchema: jsonSchema<{ city: string }>(WEATHER_SCHEMA),
          execute: async (args) => {
            executed.push(args);
            return WEATHER_RESULT;
          },
        }),
      },
      stopWhen: stepCountIs(5),
      maxRetries: 0,
    });
    assert.deepEqual(executed, [input(think.calls[0]!.arguments)]);
    assert.equal(result.steps.length, 2);
    assert.equal(result.steps[0]!.finishReason, "tool-calls");
    assert.equal(result.text, think.after.answer);
    assert.equal(result.finishReason, "stop");
  });

  test("LangChain's ChatOpenAI.bindTools gets tool_calls", async () => {
    const model = new ChatOpenAI({ model: "scripted-tool-parallel", apiKey: service.localKey!, configuration: { baseURL: `${service.url}/v1` }, maxRetries: 0 });
    const bound = model.bindTools([
      { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: WEATHER_SCHEMA } },
      { type: "function", function: { name: "get_time", description: "The time in a timezone", parameters: TIME_SCHEMA } },
    ]);
    const reply = await bound.invoke("Weather and time in Paris?");
    assert.deepEqual(
      reply.tool_calls?.map((c) => ({ name: c.name, args: c.args })),
      parallel.calls.map((c) => ({ name: c.name, args: input(c.arguments) })),
    );
    assert.ok(reply.tool_calls!.every((c) => typeof c.id === "string" && c.id.length > 0));
  });
});

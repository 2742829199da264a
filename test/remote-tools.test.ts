/**
 * Tool calls through the remote engine and the fleet engine, against a real upstream: a Sputnik
 * node in its own process serving the scripted tool-calling models (src/gguf/toolScripts.ts). The
 * gateway passes tools, tool_choice, the assistant's tool_calls and the tool results upstream and
 * reads the upstream's `tool_calls` deltas back into tool calls — streamed and not, on /v1 and on
 * /anthropic. (Calls an upstream leaves inline in its text: src/engines/remote/toolCalls.test.ts
 * and upstreamTools.test.ts.)
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { readLocalKey } from "../src/auth/localMode.ts";
import { ensureModel, TOOL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startServeProcess, type ServeProcess } from "./support/serveProcess.ts";
import { startTestService, type TestService } from "./support/service.ts";

const think = TOOL_SCRIPTS["scripted-tool-think"]!;
const parallel = TOOL_SCRIPTS["scripted-tool-parallel"]!;
const malformed = TOOL_SCRIPTS["scripted-tool-malformed"]!;
const qwenCall = TOOL_SCRIPTS["scripted-qwen-tool-call"]!;
const qwenMalformed = TOOL_SCRIPTS["scripted-qwen-tool-malformed"]!;

let upstream: ServeProcess;
let upstreamDir: string;
let gateway: TestService;
let openai: OpenAI;

before(async () => {
  upstreamDir = await mkdtemp(join(tmpdir(), "sputnik-tool-upstream-"));
  const configFile = join(upstreamDir, "config.json");
  const models = [];
  for (const name of ["scripted-tool-think", "scripted-tool-parallel", "scripted-tool-malformed", "scripted-qwen-tool-call", "scripted-qwen-tool-malformed"]) models.push(await ensureModel(name));
  await writeFile(
    configFile,
    JSON.stringify({ host: "127.0.0.1", port: 0, dataDir: upstreamDir, models, threads: 1, parallel: 2, contextSize: 4096, pullDefaultModel: false, logLevel: "info" }),
  );
  upstream = await startServeProcess(configFile);
  const key = (await readLocalKey(upstreamDir))!;
  const remote = (id: string, model: string) => ({ id, baseUrl: `${upstream.url}/v1`, upstreamModel: model, apiKey: key });
  gateway = await startTestService({
    models: [],
    config: {
      remoteModels: [
        remote("remote-think", "scripted-tool-think"),
        remote("remote-parallel", "scripted-tool-parallel"),
        remote("remote-malformed", "scripted-tool-malformed"),
        remote("remote-qwen", "scripted-qwen-tool-call"),
        remote("remote-qwen-malformed", "scripted-qwen-tool-malformed"),
        // The fleet engine reuses the remote engine's upstream client: tools must go through it too.
        { id: "fleet-think", upstreamModel: "scripted-tool-think", replicas: [{ baseUrl: `${upstream.url}/v1`, apiKey: key }] },
      ],
    },
  });
  openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.localKey!, maxRetries: 0 });
});
after(async () => {
  await gateway?.stop();
  upstream?.kill("SIGTERM");
  await upstream?.exited;
  await rm(upstreamDir, { recursive: true, force: true });
});

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } },
  { type: "function", function: { name: "get_time", description: "The time in a timezone", parameters: { type: "object", properties: { timezone: { type: "string" } }, required: ["timezone"] } } },
];
type Message = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };

/** A streamed answer put together: reasoning, content, calls by index, finish reason. */
async function streamed(model: string, messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[], extra: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming> = {}) {
  const stream = await openai.chat.completions.create({ model, messages, tools: TOOLS, stream: true, ...extra });
  let reasoning = "";
  let content = "";
  let finish: string | null = null;
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  let argumentDeltas = 0;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    const delta = choice?.delta as { reasoning_content?: string | null; content?: string | null; tool_calls?: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] } | undefined;
    reasoning += delta?.reasoning_content ?? "";
    content += delta?.content ?? "";
    for (const piece of delta?.tool_calls ?? []) {
      calls[piece.index] ??= { id: "", name: "", arguments: "" };
      const call = calls[piece.index]!;
      if (piece.id) call.id = piece.id;
      if (piece.function?.name) call.name += piece.function.name;
      if (piece.function?.arguments) {
        call.arguments += piece.function.arguments;
        argumentDeltas++;
      }
    }
    finish = choice?.finish_reason ?? finish;
  }
  return { reasoning, content, calls, finish, argumentDeltas };
}

test("non-streamed through the remote engine: the upstream's call after its reasoning, then the full loop to the answer", async () => {
  const question = { role: "user" as const, content: "What is the weather in Paris?" };
  const first = await openai.chat.completions.create({ model: "remote-think", messages: [question], tools: TOOLS });
  const message = first.choices[0]!.message as Message;
  assert.equal(first.choices[0]!.finish_reason, "tool_calls");
  assert.equal(message.reasoning_content, think.reasoning);
  assert.equal(message.content ?? "", "");
  assert.deepEqual(
    message.tool_calls!.map((c) => c.type === "function" && [c.function.name, c.function.arguments]),
    [[think.calls[0]!.name, think.calls[0]!.arguments]],
  );
  const callId = message.tool_calls![0]!.id;
  const second = await openai.chat.completions.create({
    model: "remote-think",
    tools: TOOLS,
    messages: [question, { role: "assistant", content: message.content, tool_calls: message.tool_calls }, { role: "tool", tool_call_id: callId, content: "Sunny, 22 degrees." }],
  });
  assert.equal(second.choices[0]!.finish_reason, "stop");
  assert.equal((second.choices[0]!.message as Message).reasoning_content, think.after.reasoning);
  assert.equal(second.choices[0]!.message.content, think.after.answer);
});

test("streamed through the remote engine: two parallel calls as tool_calls deltas (index, id once, argument pieces)", async () => {
  const answer = await streamed("remote-parallel", [{ role: "user", content: "Weather and time in Paris?" }]);
  assert.equal(answer.reasoning, parallel.reasoning);
  assert.equal(answer.content, "");
  assert.equal(answer.finish, "tool_calls");
  assert.deepEqual(
    answer.calls.map((c) => [c.name, c.arguments]),
    parallel.calls.map((c) => [c.name, c.arguments]),
  );
  assert.ok(answer.calls.every((c) => c.id.startsWith("call_")));
  assert.ok(answer.argumentDeltas > 2, "the arguments arrive in pieces, as the upstream streamed them");
});

test("tool_choice named goes upstream: the call is forced, with no reasoning", async () => {
  const answer = await streamed("remote-think", [{ role: "user", content: "Weather now." }], { tool_choice: { type: "function", function: { name: "get_weather" } } });
  assert.equal(answer.reasoning, "");
  assert.deepEqual(
    answer.calls.map((c) => [c.name, c.arguments]),
    [[think.calls[0]!.name, think.calls[0]!.arguments]],
  );
  assert.equal(answer.finish, "tool_calls");
});

test("a malformed call stays text through the remote engine (finish stop)", async () => {
  const first = await openai.chat.completions.create({ model: "remote-malformed", messages: [{ role: "user", content: "Weather?" }], tools: TOOLS });
  assert.equal(first.choices[0]!.finish_reason, "stop");
  assert.equal(first.choices[0]!.message.content, malformed.malformed);
  assert.equal(first.choices[0]!.message.tool_calls, undefined);
});

test("Qwen2.5's syntax through the remote engine: the call streamed and not, the loop to the answer, a malformed block stays text", async () => {
  const question = { role: "user" as const, content: "What is the weather in Paris?" };
  const streamedCall = await streamed("remote-qwen", [question]);
  assert.equal(streamedCall.finish, "tool_calls");
  assert.equal(streamedCall.content, "");
  assert.deepEqual(
    streamedCall.calls.map((c) => [c.name, c.arguments]),
    qwenCall.calls.map((c) => [c.name, c.arguments]),
  );
  const first = await openai.chat.completions.create({ model: "remote-qwen", messages: [question], tools: TOOLS });
  const message = first.choices[0]!.message;
  assert.equal(first.choices[0]!.finish_reason, "tool_calls");
  assert.deepEqual(
    message.tool_calls!.map((c) => c.type === "function" && [c.function.name, c.function.arguments]),
    qwenCall.calls.map((c) => [c.name, c.arguments]),
  );
  const second = await openai.chat.completions.create({
    model: "remote-qwen",
    tools: TOOLS,
    messages: [question, { role: "assistant", content: message.content, tool_calls: message.tool_calls }, { role: "tool", tool_call_id: message.tool_calls![0]!.id, content: "Sunny, 22 degrees." }],
  });
  assert.equal(second.choices[0]!.finish_reason, "stop");
  assert.equal(second.choices[0]!.message.content, qwenCall.after.answer);

  const bad = await openai.chat.completions.create({ model: "remote-qwen-malformed", messages: [question], tools: TOOLS });
  assert.equal(bad.choices[0]!.finish_reason, "stop");
  assert.equal(bad.choices[0]!.message.content, qwenMalformed.malformed);
  assert.equal(bad.choices[0]!.message.tool_calls, undefined);
  const badStreamed = await streamed("remote-qwen-malformed", [question]);
  assert.equal(badStreamed.finish, "stop");
  assert.equal(badStreamed.content, qwenMalformed.malformed);
  assert.deepEqual(badStreamed.calls, []);
});

test("the fleet engine passes tools through its replicas the same way", async () => {
  const answer = await streamed("fleet-think", [{ role: "user", content: "Weather in Paris?" }]);
  assert.equal(answer.reasoning, think.reasoning);
  assert.deepEqual(
    answer.calls.map((c) => [c.name, c.arguments]),
    [[think.calls[0]!.name, think.calls[0]!.arguments]],
  );
  assert.equal(answer.finish, "tool_calls");
});

test("the Anthropic surface over a remote model: a tool_use round trip with the official SDK", async () => {
  const client = new Anthropic({ baseURL: `${gateway.url}/anthropic`, apiKey: gateway.localKey!, maxRetries: 0 });
  const tools: Anthropic.Tool[] = TOOLS.map((t) => {
    const fn = (t as OpenAI.Chat.Completions.ChatCompletionFunctionTool).function;
    return { name: fn.name, description: fn.description!, input_schema: fn.parameters as Anthropic.Tool.InputSchema };
  });
  const first = await client.messages.stream({ model: "remote-think", max_tokens: 300, tools, messages: [{ role: "user", content: "What is the weather in Paris?" }] }).finalMessage();
  assert.equal(first.stop_reason, "tool_use");
  const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use")!;
  assert.deepEqual([use.name, use.input], [think.calls[0]!.name, JSON.parse(think.calls[0]!.arguments)]);
  const second = await client.messages.create({
    model: "remote-think",
    max_tokens: 300,
    tools,
    messages: [
      { role: "user", content: "What is the weather in Paris?" },
      { role: "assistant", content: first.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "Sunny, 22 degrees." }] },
    ],
  });
  assert.equal(second.stop_reason, "end_turn");
  assert.deepEqual(second.content.at(-1), { type: "text", text: think.after.answer });
});

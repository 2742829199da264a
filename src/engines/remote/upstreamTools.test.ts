/**
 * The upstream client's pass-through of tools and sampling parameters, and its reading of tool
 * calls, logprobs and stop strings, against an HTTP server that answers as vLLM / SGLang /
 * llama-server do (recorded shapes, replayed): what is POSTed upstream, and the engine events that
 * come back. The round trip with a real Sputnik upstream is in test/remote-tools.test.ts.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import type { EngineEvent, GenerationRequest } from "../types.ts";
import { UpstreamClient } from "./upstream.ts";

let server: Server;
let baseUrl: string;
/** What the next request is answered with: SSE `data:` payloads. */
let script: unknown[] = [];
let received: any = null;

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received = JSON.parse(body);
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const data of script) res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = () => new UpstreamClient({ model: "m", baseUrl, upstreamModel: "up", timeoutMs: 10_000 });

async function run(request: Partial<GenerationRequest>, chunks: unknown[]): Promise<EngineEvent[]> {
  script = chunks;
  const events: EngineEvent[] = [];
  for await (const event of client().stream({ model: "m", messages: [{ role: "user", content: "hi" }], ...request })) events.push(event);
  return events;
}

const chunk = (delta: object, extra: object = {}) => ({ choices: [{ index: 0, delta, finish_reason: null, ...extra }] });
const finish = (reason: string, extra: object = {}) => ({ choices: [{ index: 0, delta: {}, finish_reason: reason, ...extra }] });
const usage = { choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } };
const TOOLS = [{ name: "get_weather", description: "Weather of a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }, strict: true }];

/** Events with tool-call deltas folded per call, for exact comparison. */
function fold(events: EngineEvent[]) {
  const out: unknown[] = [];
  for (const e of events) {
    const last = out.at(-1) as any;
    if (e.type === "tool_call_arguments" && last?.type === "tool_call" && last.index === e.index) last.arguments += e.text;
    else if ((e.type === "content" || e.type === "reasoning") && last?.type === e.type) last.text += e.text;
    else if (e.type === "tool_call") out.push({ type: "tool_call", index: e.index, name: e.name, arguments: "" });
    else if (e.type === "usage") out.push({ type: "usage" });
    else out.push({ ...e });
  }
  return out;
}

test("tools, tool_choice, parallel_tool_calls, tool messages, assistant tool_calls and H3's parameters are sent upstream in OpenAI's shape", async () => {
  await run(
    {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather?" },
        { role: "assistant", content: "", reasoning_content: "never sent", tool_calls: [{ id: "call_1", name: "get_weather", arguments: '{"city": "Paris"}' }] },
        { role: "tool", content: "sunny", tool_call_id: "call_1" },
        { role: "assistant", content: "It is", prefix: true },
      ],
      tools: TOOLS,
      toolChoice: { name: "get_weather" },
      parallelToolCalls: false,
      frequencyPenalty: 0.5,
      presencePenalty: -0.5,
      logitBias: { "42": -100 },
      logprobs: { top: 3 },
      topK: 20,
      thinking: false,
      maxTokens: 64,
    },
    [usage],
  );
  assert.deepEqual(received, {
    model: "up",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } }] },
      { role: "tool", content: "sunny", tool_call_id: "call_1" },
      { role: "assistant", content: "It is", prefix: true },
    ],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 64,
    top_k: 20,
    frequency_penalty: 0.5,
    presence_penalty: -0.5,
    logit_bias: { "42": -100 },
    logprobs: true,
    top_logprobs: 3,
    thinking: { type: "disabled" },
    tools: [{ type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: TOOLS[0]!.parameters, strict: true } }],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    parallel_tool_calls: false,
  });
  await run({ tools: TOOLS, toolChoice: "required" }, [usage]);
  assert.equal(received.tool_choice, "required");
  await run({}, [usage]);
  assert.equal(received.tools, undefined, "no tools: none sent");
  assert.equal(received.tool_choice, undefined);
});

test("streamed tool_calls deltas (vLLM/DeepSeek shape) become tool_call events after the reasoning; finish tool_calls", async () => {
  const events = await run({ tools: TOOLS }, [
    chunk({ role: "assistant", reasoning_content: "I will call." }),
    chunk({ tool_calls: [{ index: 0, id: "call_up1", type: "function", function: { name: "get_weather", arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city": ' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
    chunk({ tool_calls: [{ index: 1, id: "call_up2", type: "function", function: { name: "get_time", arguments: "{}" } }] }),
    finish("tool_calls"),
    usage,
  ]);
  assert.deepEqual(fold(events), [
    { type: "reasoning", text: "I will call." },
    { type: "tool_call", index: 0, name: "get_weather", arguments: '{"city": "Paris"}' },
    { type: "tool_call", index: 1, name: "get_time", arguments: "{}" },
    { type: "usage" },
    { type: "done", finishReason: "tool_calls" },
  ]);
  assert.deepEqual(
    events.filter((e) => e.type === "tool_call").map((e) => (e as { id: string }).id),
    ["call_up1", "call_up2"],
  );
});

test("calls left inline in the text (Qwen's <tool_call>, after <think>) are normalised; finish_reason stop becomes tool_calls", async () => {
  const text = '<think>\nI need the weather.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
  const pieces = text.match(/[\s\S]{1,4}/g)!;
  const events = await run({ tools: TOOLS }, [...pieces.map((p) => chunk({ content: p })), finish("stop"), usage]);
  assert.deepEqual(fold(events), [
    { type: "reasoning", text: "I need the weather." },
    { type: "tool_call", index: 0, name: "get_weather", arguments: '{"city":"Paris"}' },
    { type: "usage" },
    { type: "done", finishReason: "tool_calls" },
  ]);
});

test("without tools (or with tool_choice none) inline call text is left as text", async () => {
  const text = '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>';
  for (const request of [{}, { tools: TOOLS, toolChoice: "none" as const }]) {
    const events = await run(request, [chunk({ content: text }), finish("stop"), usage]);
    assert.deepEqual(fold(events), [{ type: "content", text }, { type: "usage" }, { type: "done", finishReason: "stop" }]);
  }
});

test("logprobs (content, and Sputnik's reasoning channel) and vLLM's matched stop string", async () => {
  const lp = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob, bytes: [...Buffer.from(token)] }] });
  const events = await run({ stop: ["END", "STOP"], logprobs: { top: 1 } }, [
    chunk({ reasoning_content: "Hm" }, { logprobs: { reasoning_content: [lp("Hm", -0.5)] } }),
    chunk({ content: "Hi" }, { logprobs: { content: [{ token: "Hi", logprob: -0.1 }] } }),
    finish("stop", { stop_reason: "STOP" }),
    usage,
  ]);
  assert.deepEqual(fold(events), [
    { type: "logprobs", channel: "reasoning", tokens: [{ token: "Hm", logprob: -0.5, bytes: [72, 109], top: [{ token: "Hm", logprob: -0.5, bytes: [72, 109] }] }] },
    { type: "reasoning", text: "Hm" },
    { type: "logprobs", channel: "content", tokens: [{ token: "Hi", logprob: -0.1, bytes: [72, 105], top: [] }] },
    { type: "content", text: "Hi" },
    { type: "usage" },
    { type: "done", finishReason: "stop", stopSequence: "STOP" },
  ]);
});

test("a raw-text completion (FIM) goes to the upstream's legacy `completions` with prompt and suffix; its text comes back untouched", async () => {
  let path = "";
  server.once("request", (req) => (path = req.url ?? ""));
  const events = await run({ messages: [], completion: { prompt: "def add(a, b):\n", suffix: "\n\nprint(add(1, 2))" }, maxTokens: 16, logprobs: { top: 2 }, stop: ["\n\n"] }, [
    { choices: [{ index: 0, text: "    return", logprobs: { tokens: ["    return"], token_logprobs: [-0.25], top_logprobs: [{ "    return": -0.25, "    pass": -2 }] }, finish_reason: null }] },
    { choices: [{ index: 0, text: " a + b\n", finish_reason: null }] },
    { choices: [{ index: 0, text: "", finish_reason: "stop" }] },
    usage,
  ]);
  assert.equal(path, "/v1/completions");
  assert.deepEqual(received, {
    model: "up",
    prompt: "def add(a, b):\n",
    suffix: "\n\nprint(add(1, 2))",
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 16,
    stop: ["\n\n"],
    logprobs: 2,
  });
  assert.deepEqual(fold(events), [
    {
      type: "logprobs",
      channel: "content",
      tokens: [{ token: "    return", logprob: -0.25, bytes: [...Buffer.from("    return")], top: [{ token: "    return", logprob: -0.25, bytes: [...Buffer.from("    return")] }, { token: "    pass", logprob: -2, bytes: [...Buffer.from("    pass")] }] }],
    },
    { type: "content", text: "    return a + b\n" },
    { type: "usage" },
    { type: "done", finishReason: "stop" },
  ]);
});

/**
 * Function calling through /v1/chat/completions on the local engine: real llama.cpp on the
 * generated tool-calling models (src/gguf/toolScripts.ts), streamed and not, asserted exactly.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TOOL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startTestService, type TestService } from "./support/service.ts";

let service: TestService;
before(async () => {
  service = await startTestService({
    models: [
      "scripted-tool-call",
      "scripted-tool-think",
      "scripted-tool-parallel",
      "scripted-tool-malformed",
      "scripted-qwen-tool-call",
      "scripted-qwen-tool-parallel",
      "scripted-qwen-tool-malformed",
    ],
  });
});
after(() => service.stop());

const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The current weather in a city.",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
  {
    type: "function",
    function: {
      name: "get_time",
      description: "The current time in a time zone.",
      parameters: { type: "object", properties: { timezone: { type: "string" } }, required: ["timezone"] },
      strict: true,
    },
  },
];
const ASK = [{ role: "user", content: "What is the weather in Paris?" }];
const CALL_ID = /^call_[0-9a-f]{24}$/;

interface Answer {
  reasoning: string;
  content: string;
  toolCalls: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
  finishReason: string;
  usage: { prompt_tokens: number; prompt_cache_hit_tokens: number; prompt_cache_miss_tokens: number; completion_tokens: number };
}

async function post(body: object): Promise<{ status: number; body: any }> {
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function complete(body: object): Promise<Answer> {
  const { status, body: json } = await post(body);
  assert.equal(status, 200, JSON.stringify(json));
  const choice = json.choices[0];
  return {
    reasoning: choice.message.reasoning_content,
    content: choice.message.content,
    toolCalls: choice.message.tool_calls ?? [],
    finishReason: choice.finish_reason,
    usage: json.usage,
  };
}

/** Streams and folds the chunks as an OpenAI client does; checks the tool_calls delta shape on the way. */
async function stream(body: object): Promise<Answer> {
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(response.status, 200);
  const text = await response.text();
  const chunks = text
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice(6)));
  const answer: Answer = { reasoning: "", content: "", toolCalls: [], finishReason: "", usage: undefined as never };
  for (const chunk of chunks) {
    if (chunk.usage) answer.usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.finish_reason) answer.finishReason = choice.finish_reason;
    const delta = choice.delta;
    answer.reasoning += delta.reasoning_content ?? "";
    answer.content += delta.content ?? "";
    for (const piece of delta.tool_calls ?? []) {
      const call = answer.toolCalls[piece.index];
      if (!call) {
        // The first piece of a call: index, id, type and name, arguments empty.
        assert.deepEqual(Object.keys(piece).sort(), ["function", "id", "index", "type"]);
        assert.equal(piece.function.arguments, "");
        assert.equal(piece.index, answer.toolCalls.length, "calls are announced in order");
        answer.toolCalls[piece.index] = { id: piece.id, type: piece.type, function: { name: piece.function.name, arguments: "" } };
      } else {
        // Later pieces: only index and an arguments fragment.
        assert.deepEqual(Object.keys(piece).sort(), ["function", "index"]);
        assert.deepEqual(Object.keys(piece.function), ["arguments"]);
        call.function.arguments += piece.function.arguments;
      }
    }
  }
  assert.ok(text.endsWith("data: [DONE]\n\n"));
  return answer;
}

const modes = { "non-streamed": complete, streamed: stream } as const;

function assertCalls(answer: Answer, expected: ReadonlyArray<{ name: string; arguments: string }>): void {
  assert.equal(answer.finishReason, "tool_calls");
  assert.deepEqual(
    answer.toolCalls.map((c) => ({ type: c.type, name: c.function.name, arguments: c.function.arguments })),
    expected.map((c) => ({ type: "function", name: c.name, arguments: c.arguments })),
  );
  for (const call of answer.toolCalls) assert.match(call.id, CALL_ID);
  assert.equal(new Set(answer.toolCalls.map((c) => c.id)).size, answer.toolCalls.length, "ids differ");
}

for (const [mode, send] of Object.entries(modes)) {
  describe(`function calling, ${mode}`, () => {
    test("a single call, with no reasoning before it", async () => {
      const answer = await send({ model: "scripted-tool-call", messages: ASK, tools: TOOLS });
      assertCalls(answer, TOOL_SCRIPTS["scripted-tool-call"]!.calls);
      assert.equal(answer.content, "");
      assert.equal(answer.reasoning, "");
    });

    test("a call after reasoning: the reasoning stays split out", async () => {
      const script = TOOL_SCRIPTS["scripted-tool-think"]!;
      const answer = await send({ model: "scripted-tool-think", messages: ASK, tools: TOOLS });
      assert.equal(answer.reasoning, script.reasoning);
      assert.equal(answer.content, "");
      assertCalls(answer, script.calls);
      assert.equal(answer.usage.prompt_cache_hit_tokens + answer.usage.prompt_cache_miss_tokens, answer.usage.prompt_tokens);
    });

    test("two parallel calls in one turn", async () => {
      const script = TOOL_SCRIPTS["scripted-tool-parallel"]!;
      const answer = await send({ model: "scripted-tool-parallel", messages: ASK, tools: TOOLS });
      assert.equal(answer.reasoning, script.reasoning);
      assertCalls(answer, script.calls);
    });

    test("tool_choice naming a function forces the call at once (no reasoning)", async () => {
      const answer = await send({
        model: "scripted-tool-think",
        messages: ASK,
        tools: TOOLS,
        tool_choice: { type: "function", function: { name: "get_weather" } },
      });
      assert.equal(answer.reasoning, "");
      assertCalls(answer, [TOOL_SCRIPTS["scripted-tool-think"]!.calls[0]!]);
    });

    test("a full loop: call, tool result, final answer (the result's turn reuses the call's KV state)", async () => {
      const script = TOOL_SCRIPTS["scripted-tool-think"]!;
      const first = await send({ model: "scripted-tool-think", messages: ASK, tools: TOOLS });
      assertCalls(first, script.calls);
      const call = first.toolCalls[0]!;
      const messages = [
        ...ASK,
        { role: "assistant", content: null, reasoning_content: first.reasoning, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: '{"sky": "sunny", "celsius": 22}' },
      ];
      const final = await send({ model: "scripted-tool-think", messages, tools: TOOLS });
      assert.equal(final.finishReason, "stop");
      assert.deepEqual(final.toolCalls, []);
      assert.equal(final.reasoning, script.after.reasoning);
      assert.equal(final.content, script.after.answer);
      // The first prompt and the call the model wrote were kept: only the result and a few markers are new.
      assert.ok(final.usage.prompt_cache_hit_tokens >= first.usage.prompt_tokens, JSON.stringify({ first: first.usage, final: final.usage }));
      assert.ok(final.usage.prompt_cache_miss_tokens < 40, JSON.stringify(final.usage));
      assert.equal(final.usage.prompt_cache_hit_tokens + final.usage.prompt_cache_miss_tokens, final.usage.prompt_tokens);
    });

    test("two parallel results answered by tool_call_id, in any order", async () => {
      const script = TOOL_SCRIPTS["scripted-tool-parallel"]!;
      const first = await send({ model: "scripted-tool-parallel", messages: ASK, tools: TOOLS });
      const [weather, time] = first.toolCalls;
      const final = await send({
        model: "scripted-tool-parallel",
        tools: TOOLS,
        messages: [
          ...ASK,
          { role: "assistant", content: "", tool_calls: first.toolCalls },
          { role: "tool", tool_call_id: time!.id, content: "12:00" },
          { role: "tool", tool_call_id: weather!.id, content: "sunny" },
        ],
      });
      assert.equal(final.reasoning, script.after.reasoning);
      assert.equal(final.content, script.after.answer);
      assert.equal(final.finishReason, "stop");
    });

    test("a malformed call is returned as content with finish_reason stop", async () => {
      const script = TOOL_SCRIPTS["scripted-tool-malformed"]!;
      const answer = await send({ model: "scripted-tool-malformed", messages: ASK, tools: TOOLS });
      assert.equal(answer.reasoning, script.reasoning);
      assert.equal(answer.content, script.malformed);
      assert.deepEqual(answer.toolCalls, []);
      assert.equal(answer.finishReason, "stop");
    });

    test('tool_choice "none": no tools in the prompt, no calls parsed', async () => {
      const withTools = await send({ model: "scripted-tool-think", messages: ASK, tools: TOOLS, max_tokens: 40 });
      const none = await send({ model: "scripted-tool-think", messages: ASK, tools: TOOLS, tool_choice: "none", max_tokens: 40 });
      const noTools = await send({ model: "scripted-tool-think", messages: ASK, max_tokens: 40 });
      assert.deepEqual(none.toolCalls, []);
      assert.notEqual(none.finishReason, "tool_calls");
      assert.equal(none.usage.prompt_tokens, noTools.usage.prompt_tokens, "the tools are not rendered");
      assert.ok(withTools.usage.prompt_tokens > none.usage.prompt_tokens + 50);
      // The model still writes its call syntax, which then is plain text.
      assert.equal(none.reasoning, TOOL_SCRIPTS["scripted-tool-think"]!.reasoning);
      assert.ok(none.content.startsWith("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather"), none.content);
    });
  });
}

/** The Qwen2.5-template models: QwenChatWrapper's `<tool_call>` syntax through the same engine path. */
for (const [mode, send] of Object.entries(modes)) {
  describe(`function calling in Qwen2.5's syntax, ${mode}`, () => {
    test("a single call", async () => {
      const answer = await send({ model: "scripted-qwen-tool-call", messages: ASK, tools: TOOLS });
      assertCalls(answer, TOOL_SCRIPTS["scripted-qwen-tool-call"]!.calls);
      assert.equal(answer.content, "");
      assert.equal(answer.reasoning ?? "", "");
    });

    test("two parallel calls in one turn", async () => {
      const answer = await send({ model: "scripted-qwen-tool-parallel", messages: ASK, tools: TOOLS });
      assertCalls(answer, TOOL_SCRIPTS["scripted-qwen-tool-parallel"]!.calls);
      assert.equal(answer.content, "");
    });

    test("a malformed call (a Python dict inside <tool_call>) is returned as content with finish_reason stop", async () => {
      const script = TOOL_SCRIPTS["scripted-qwen-tool-malformed"]!;
      const answer = await send({ model: "scripted-qwen-tool-malformed", messages: ASK, tools: TOOLS });
      assert.equal(answer.content, script.malformed);
      assert.deepEqual(answer.toolCalls, []);
      assert.equal(answer.finishReason, "stop");
    });

    test("tool_choice naming a function forces the call", async () => {
      const answer = await send({
        model: "scripted-qwen-tool-call",
        messages: ASK,
        tools: TOOLS,
        tool_choice: { type: "function", function: { name: "get_weather" } },
      });
      assertCalls(answer, TOOL_SCRIPTS["scripted-qwen-tool-call"]!.calls);
    });

    test("a full loop: call, tool result, final answer (reusing the call's KV state)", async () => {
      const script = TOOL_SCRIPTS["scripted-qwen-tool-call"]!;
      const first = await send({ model: "scripted-qwen-tool-call", messages: ASK, tools: TOOLS });
      assertCalls(first, script.calls);
      const call = first.toolCalls[0]!;
      const messages = [
        ...ASK,
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: '{"sky": "sunny", "celsius": 22}' },
      ];
      const final = await send({ model: "scripted-qwen-tool-call", messages, tools: TOOLS });
      assert.equal(final.finishReason, "stop");
      assert.deepEqual(final.toolCalls, []);
      assert.equal(final.content, script.after.answer);
      assert.equal(final.reasoning ?? "", "");
      assert.ok(final.usage.prompt_cache_hit_tokens >= first.usage.prompt_tokens, JSON.stringify({ first: first.usage, final: final.usage }));
      assert.ok(final.usage.prompt_cache_miss_tokens < 40, JSON.stringify(final.usage));
    });

    test("two parallel results answered by tool_call_id, in any order", async () => {
      const script = TOOL_SCRIPTS["scripted-qwen-tool-parallel"]!;
      const first = await send({ model: "scripted-qwen-tool-parallel", messages: ASK, tools: TOOLS });
      assertCalls(first, script.calls);
      const [weather, time] = first.toolCalls;
      const final = await send({
        model: "scripted-qwen-tool-parallel",
        tools: TOOLS,
        messages: [
          ...ASK,
          { role: "assistant", content: "", tool_calls: first.toolCalls },
          { role: "tool", tool_call_id: time!.id, content: "12:00" },
          { role: "tool", tool_call_id: weather!.id, content: "sunny" },
        ],
      });
      assert.equal(final.content, script.after.answer);
      assert.equal(final.finishReason, "stop");
      assert.ok(final.usage.prompt_cache_hit_tokens >= first.usage.prompt_tokens, JSON.stringify({ first: first.usage, final: final.usage }));
    });
  });
}

describe("function calling, validation", () => {
  const bad = async (body: object, param: string | RegExp) => {
    const { status, body: json } = await post({ model: "scripted-tool-call", messages: ASK, ...body });
    assert.equal(status, 400, JSON.stringify(json));
    if (typeof param === "string") assert.equal(json.error.param, param, JSON.stringify(json));
    else assert.match(json.error.param, param, JSON.stringify(json));
    return json.error;
  };

  test("tool_choice naming a function not in tools", async () => {
    const error = await bad({ tools: TOOLS, tool_choice: { type: "function", function: { name: "get_stock" } } }, "tool_choice");
    assert.match(error.message, /get_stock/);
  });

  test('tool_choice "required" without tools, or of an unknown kind', async () => {
    await bad({ tool_choice: "required" }, "tool_choice");
    await bad({ tools: TOOLS, tool_choice: "sometimes" }, "tool_choice");
  });

  test("tools: bad names, duplicates, wrong type, too many, schemas over the bounds", async () => {
    const named = (name: string) => ({ type: "function", function: { name } });
    await bad({ tools: [named("get weather")] }, /^tools/);
    await bad({ tools: [named("a"), named("a")] }, /^tools/);
    await bad({ tools: [{ type: "retrieval", function: { name: "a" } }] }, /^tools/);
    await bad({ tools: Array.from({ length: 129 }, (_, i) => named(`f${i}`)) }, "tools");
    const huge = { type: "object", properties: { x: { enum: Array.from({ length: 1001 }, (_, i) => i) } } };
    await bad({ tools: [{ type: "function", function: { name: "f", parameters: huge } }] }, /^tools/);
  });

  test("assistant tool_calls must be well formed", async () => {
    const messages = [...ASK, { role: "assistant", content: null, tool_calls: [{ id: "x", type: "function", function: { name: "f" } }] }];
    await bad({ messages, tools: TOOLS }, /^messages/);
  });

  test("response_format together with tools is refused, naming response_format", async () => {
    await bad({ tools: TOOLS, response_format: { type: "json_object" } }, "response_format");
  });

  test("a strict schema that cannot become a grammar is refused before generating", async () => {
    const tools = [{ type: "function", function: { name: "f", strict: true, parameters: { type: "object", properties: { a: { type: "decimal" } } } } }];
    const { status, body } = await post({ model: "scripted-tool-call", messages: ASK, tools });
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(body.error.param, "tools[0].function.parameters");
  });
});

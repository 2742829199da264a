/**
 * The Anthropic Messages API at /anthropic, against the local scripted model: the official
 * `@anthropic-ai/sdk` (messages.create and messages.stream, thinking blocks included), the exact
 * streamed event sequence, errors in Anthropic's shape, and the mapping of the request onto the
 * same engine request /v1 builds (same prompt, same usage).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { thinkingSignature } from "../src/presenters/anthropic.ts";
import { startTestService, type TestService } from "./support/service.ts";

const scripted = MODEL_SCRIPTS.scripted!;
const long = MODEL_SCRIPTS["scripted-long"]!;
let service: TestService;
let client: Anthropic;

before(async () => {
  // Quiet streams ping every 100 ms (the queue's keep-alive interval), so the ping test is quick.
  service = await startTestService({ models: ["scripted", "scripted-long"], config: { limits: { queue: { keepAliveMs: 100 } } } });
  // Local single-user mode: the local key is the API key; the SDK sends it as `x-api-key`.
  client = new Anthropic({ baseURL: `${service.url}/anthropic`, apiKey: service.localKey!, maxRetries: 0 });
});
after(() => service.stop());

async function post(path: string, body: string | object, headers: Record<string, string> = service.localAuth) {
  const response = await fetch(`${service.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // an event stream
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** An SSE body as [event name, data] pairs; every `data` is JSON whose `type` is the event's name. */
function events(text: string): Array<[string, any]> {
  const out: Array<[string, any]> = [];
  for (const frame of text.split("\n\n")) {
    if (!frame.trim()) continue;
    const name = /^event: (.+)$/m.exec(frame)?.[1];
    const data = /^data: (.+)$/m.exec(frame)?.[1];
    assert.ok(name && data, `a named event with data: ${JSON.stringify(frame)}`);
    const parsed = JSON.parse(data);
    assert.equal(parsed.type, name, "the data's type is the event's name");
    out.push([name, parsed]);
  }
  return out;
}

/**
 * The event sequence with deltas of one kind in a row folded into one entry (`delta:text_delta*`).
 * Pings are left out: a quiet stream may get one anywhere (the ping test checks them).
 */
function shape(list: Array<[string, any]>): string[] {
  const out: string[] = [];
  for (const [name, data] of list) {
    if (name === "ping") continue;
    const label = name === "content_block_delta" ? `delta:${data.delta.type}` : name === "content_block_start" ? `start:${data.content_block.type}` : name;
    if (label.startsWith("delta:") && out.at(-1) === `${label}*`) continue;
    out.push(label.startsWith("delta:") && label !== "delta:signature_delta" ? `${label}*` : label);
  }
  return out;
}

const ask = (content: string) => [{ role: "user" as const, content }];

describe("the Anthropic SDK against /anthropic", () => {
  test("messages.create: a thinking block with its signature, then the text; Anthropic's usage", async () => {
    const message = await client.messages.create({ model: "scripted", max_tokens: 256, messages: ask("What is the answer?") });
    assert.match(message.id, /^msg_/);
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.equal(message.model, "scripted");
    assert.deepEqual(message.content, [
      { type: "thinking", thinking: scripted.reasoning, signature: thinkingSignature(scripted.reasoning) },
      { type: "text", text: scripted.answer },
    ]);
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.stop_sequence, null);
    const usage = message.usage;
    assert.ok(usage.input_tokens + (usage.cache_read_input_tokens ?? 0) > 0);
    assert.ok(usage.output_tokens > 0);
    assert.equal(usage.cache_creation_input_tokens, 0);
    assert.ok(usage.output_tokens_details!.thinking_tokens > 0 && usage.output_tokens_details!.thinking_tokens < usage.output_tokens);
  });

  test("the same conversation costs the same tokens as on /v1 (one engine request, one prompt)", async () => {
    const system = "You are terse.";
    const question = "Same prompt on both surfaces, please.";
    const v1 = await post("/v1/chat/completions", { model: "scripted", max_tokens: 256, messages: [{ role: "system", content: system }, { role: "user", content: question }] });
    const anthropic = await client.messages.create({ model: "scripted", max_tokens: 256, system: [{ type: "text", text: system }], messages: ask(question) });
    const usage = v1.json.usage;
    assert.equal(anthropic.usage.input_tokens + anthropic.usage.cache_read_input_tokens!, usage.prompt_tokens);
    assert.equal(anthropic.usage.output_tokens, usage.completion_tokens);
    assert.equal(anthropic.usage.output_tokens_details!.thinking_tokens, usage.completion_tokens_details.reasoning_tokens);
  });

  test("messages.countTokens: the prompt a message request with the same body is charged for", async () => {
    const body = {
      model: "scripted",
      system: "Count me.",
      messages: ask("How many tokens is this question?"),
      tools: [{ name: "lookup", description: "Looks a word up.", input_schema: { type: "object" as const, properties: { word: { type: "string" } } } }],
    };
    const counted = await client.messages.countTokens(body);
    const message = await client.messages.create({ ...body, max_tokens: 64, thinking: { type: "disabled" } });
    assert.ok(counted.input_tokens > 0);
    assert.equal(counted.input_tokens, message.usage.input_tokens + message.usage.cache_read_input_tokens!);
    // Without the tools the prompt is shorter: their definitions are counted as the template renders them.
    const bare = await client.messages.countTokens({ model: body.model, system: body.system, messages: body.messages });
    assert.ok(bare.input_tokens < counted.input_tokens, `${bare.input_tokens} < ${counted.input_tokens}`);
    // Validated like a message request, answered in Anthropic's error shape; unknown models are 404.
    const bad = await post("/anthropic/v1/messages/count_tokens", { model: "scripted", messages: [] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.type, "error");
    assert.equal(bad.json.error.type, "invalid_request_error");
    const unknown = await post("/anthropic/v1/messages/count_tokens", { model: "no-such-model", messages: ask("Hi") });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.type, "not_found_error");
  });

  test("messages.stream: events and the final message match messages.create", async () => {
    const stream = client.messages.stream({ model: "scripted", max_tokens: 256, messages: ask("Stream it, please.") });
    let text = "";
    let thinking = "";
    let signature = "";
    stream.on("text", (delta) => (text += delta));
    stream.on("thinking", (delta) => (thinking += delta));
    stream.on("signature", (s) => (signature = s));
    const final = await stream.finalMessage();
    assert.equal(text, scripted.answer);
    assert.equal(thinking, scripted.reasoning);
    assert.equal(signature, thinkingSignature(scripted.reasoning));
    assert.deepEqual(final.content, [
      { type: "thinking", thinking: scripted.reasoning, signature: thinkingSignature(scripted.reasoning) },
      { type: "text", text: scripted.answer },
    ]);
    assert.equal(final.stop_reason, "end_turn");
    assert.ok(final.usage.output_tokens > 0, "usage from message_delta");
    assert.ok(final.usage.input_tokens + final.usage.cache_read_input_tokens! > 0);
  });

  test("thinking disabled: no thinking block; a small budget cuts the thinking where the engine does", async () => {
    const off = await client.messages.create({ model: "scripted", max_tokens: 256, thinking: { type: "disabled" }, messages: ask("No thinking") });
    assert.deepEqual(off.content, [{ type: "text", text: scripted.answer }]);
    const budget = await client.messages.create({ model: "scripted", max_tokens: 256, thinking: { type: "enabled", budget_tokens: 5 }, messages: ask("A little thinking") });
    // The first of the 5 thought tokens is the "\n" after <think> (src/gguf/catalog.ts).
    assert.deepEqual(budget.content, [
      { type: "thinking", thinking: "The user asks a", signature: thinkingSignature("The user asks a") },
      { type: "text", text: scripted.answer },
    ]);
  });

  test("stop_sequences: stop_reason stop_sequence naming it; max_tokens: stop_reason max_tokens", async () => {
    const stopAt = "answer is";
    const stopped = await client.messages.create({ model: "scripted", max_tokens: 256, stop_sequences: ["never appears", stopAt], messages: ask("Hi") });
    assert.equal(stopped.stop_reason, "stop_sequence");
    assert.equal(stopped.stop_sequence, stopAt);
    assert.deepEqual(stopped.content.at(-1), { type: "text", text: scripted.answer.slice(0, scripted.answer.indexOf(stopAt)).trimEnd() });
    const capped = await client.messages.create({ model: "scripted-long", max_tokens: 5, messages: ask("Think a lot") });
    assert.equal(capped.stop_reason, "max_tokens");
    assert.equal(capped.usage.output_tokens, 5);
    assert.equal(capped.content[0]!.type, "thinking");
    assert.ok(long.reasoning.startsWith((capped.content[0] as Anthropic.ThinkingBlock).thinking));
    assert.deepEqual(capped.content.at(-1), { type: "text", text: "" }, "an answer cut in its thinking ends with an empty text block");
  });

  test("top_k and temperature are applied by the engine (the scripted answer survives any sampling)", async () => {
    // (The SDK's types no longer list top_k; the API still takes it.)
    const response = await post("/anthropic/v1/messages", { model: "scripted", max_tokens: 256, top_k: 1, temperature: 1, top_p: 0.9, messages: ask("Sample it") });
    assert.equal(response.status, 200, JSON.stringify(response.json));
    assert.deepEqual(response.json.content.at(-1), { type: "text", text: scripted.answer });
  });

  test("a final assistant turn is a prefill: the answer continues its text", async () => {
    const start = "Hello! I am the";
    const message = await client.messages.create({ model: "scripted", max_tokens: 256, messages: [...ask("Hi"), { role: "assistant", content: start }] });
    const text = (message.content.at(-1) as Anthropic.TextBlock).text;
    assert.equal(`${start}${text}`, scripted.answer, JSON.stringify(message.content));
  });

  test("earlier thinking blocks are accepted and never fed back", async () => {
    const history = (thinking: string) =>
      client.messages.create({
        model: "scripted",
        max_tokens: 256,
        messages: [
          { role: "user", content: "First question" },
          { role: "assistant", content: [{ type: "thinking", thinking, signature: "anything" }, { type: "text", text: scripted.answer }] },
          { role: "user", content: [{ type: "text", text: "Second question" }] },
        ],
      });
    const short = await history("x");
    const longer = await history("A very long earlier chain of thought ".repeat(20));
    assert.equal(longer.usage.input_tokens + longer.usage.cache_read_input_tokens!, short.usage.input_tokens + short.usage.cache_read_input_tokens!);
    assert.deepEqual(longer.content.at(-1), { type: "text", text: scripted.answer });
  });
});

describe("the raw stream: Anthropic's event sequence, exactly", () => {
  test("message_start, a thinking block (deltas, signature), a text block, message_delta with usage, message_stop", async () => {
    const response = await post("/anthropic/v1/messages", { model: "scripted", max_tokens: 256, stream: true, messages: ask("Exact events") });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/event-stream/);
    const list = events(response.text);
    assert.deepEqual(shape(list), [
      "message_start",
      "start:thinking",
      "delta:thinking_delta*",
      "delta:signature_delta",
      "content_block_stop",
      "start:text",
      "delta:text_delta*",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const start = list[0]![1].message;
    const delta = list.at(-2)![1];
    // The whole prompt is announced up front; the reused/evaluated split follows in message_delta.
    assert.equal(start.usage.input_tokens, delta.usage.input_tokens + delta.usage.cache_read_input_tokens);
    assert.deepEqual({ ...start, id: "", usage: { ...start.usage, input_tokens: 0 } }, {
      id: "",
      type: "message",
      role: "assistant",
      model: "scripted",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    });
    const starts = list.filter(([name]) => name === "content_block_start").map(([, d]) => d);
    assert.deepEqual(starts, [
      { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } },
      { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
    ]);
    const deltas = list.filter(([name]) => name === "content_block_delta").map(([, d]) => d);
    assert.equal(deltas.filter((d) => d.delta.type === "thinking_delta").map((d) => d.delta.thinking).join(""), scripted.reasoning);
    assert.equal(deltas.filter((d) => d.delta.type === "text_delta").map((d) => d.delta.text).join(""), scripted.answer);
    assert.ok(deltas.filter((d) => d.delta.type === "text_delta").length > 3, "the text is streamed in pieces");
    assert.ok(deltas.every((d) => d.index === (d.delta.type === "text_delta" ? 1 : 0)));
    assert.deepEqual(list.filter(([name]) => name === "content_block_stop").map(([, d]) => d.index), [0, 1]);
    assert.deepEqual(delta.delta, { stop_reason: "end_turn", stop_sequence: null });
    assert.ok(delta.usage.output_tokens > 0 && delta.usage.input_tokens + delta.usage.cache_read_input_tokens > 0);
    assert.deepEqual(list.at(-1)![1], { type: "message_stop" });
  });

  test("a stream without thinking has only the text block, at index 0", async () => {
    const response = await post("/anthropic/v1/messages", { model: "scripted", max_tokens: 256, stream: true, thinking: { type: "disabled" }, messages: ask("No thinking") });
    const list = events(response.text);
    assert.deepEqual(shape(list), ["message_start", "start:text", "delta:text_delta*", "content_block_stop", "message_delta", "message_stop"]);
    assert.equal(list[1]![1].index, 0);
  });
});

describe("pings", () => {
  test("a stream waiting in line gets ping events (before message_start), then its whole message", async () => {
    // Two sequences: of three long answers asked at once, at least one waits in line.
    const body = { model: "scripted-long", max_tokens: 400, stream: true, messages: ask("Think a lot, all of you") };
    const responses = await Promise.all([0, 1, 2].map(() => post("/anthropic/v1/messages", body)));
    const lists = responses.map((r) => events(r.text));
    for (const list of lists) {
      assert.deepEqual(shape(list), ["message_start", "start:thinking", "delta:thinking_delta*", "delta:signature_delta", "content_block_stop", "start:text", "delta:text_delta*", "content_block_stop", "message_delta", "message_stop"]);
      for (const [name, data] of list) if (name === "ping") assert.deepEqual(data, { type: "ping" });
    }
    const waited = lists.filter((list) => list[0]![0] === "ping");
    assert.ok(waited.length >= 1, "the request that waited heard pings before its message started");
  });
});

describe("errors in Anthropic's shape, with the statuses /v1 gives", () => {
  const good = { model: "scripted", max_tokens: 64, messages: ask("hi") };
  const cases: Array<[string, string | object, number, string, RegExp]> = [
    ["malformed JSON", '{"model": "scripted", "messages": [', 400, "invalid_request_error", /not valid JSON/],
    ["max_tokens missing (required, as Anthropic requires it)", { model: "scripted", messages: ask("hi") }, 400, "invalid_request_error", /'max_tokens'/],
    ["a system role inside messages", { ...good, messages: [{ role: "system", content: "x" }] }, 400, "invalid_request_error", /'messages\[0\]\.role'/],
    ["an image block", { ...good, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "" } }] }] }, 400, "invalid_request_error", /'messages\[0\]\.content\[0\]\.type': images are not supported/],
    ["a server tool", { ...good, tools: [{ type: "web_search_20250305", name: "web_search" }] }, 400, "invalid_request_error", /'tools\[0\]\.type'/],
    ["budget_tokens not below max_tokens", { ...good, thinking: { type: "enabled", budget_tokens: 64 } }, 400, "invalid_request_error", /'thinking\.budget_tokens'/],
    ["temperature out of range", { ...good, temperature: 5 }, 400, "invalid_request_error", /'temperature'/],
    ["an unknown model", { ...good, model: "no-such-model" }, 404, "not_found_error", /no-such-model/],
  ];
  for (const [name, body, status, type, message] of cases) {
    test(name, async () => {
      const response = await post("/anthropic/v1/messages", body);
      assert.equal(response.status, status, JSON.stringify(response.json));
      assert.deepEqual(Object.keys(response.json), ["type", "error"]);
      assert.equal(response.json.type, "error");
      assert.equal(response.json.error.type, type);
      assert.match(response.json.error.message, message);
    });
  }

  test("no key and a wrong key: 401 authentication_error; the SDK raises its own error classes", async () => {
    const none = await post("/anthropic/v1/messages", good, {});
    assert.equal(none.status, 401);
    assert.deepEqual(none.json, { type: "error", error: { type: "authentication_error", message: none.json.error.message } });
    assert.match(none.json.error.message, /x-api-key/);
    const wrong = await post("/anthropic/v1/messages", good, { "x-api-key": `sk-${"x".repeat(48)}` });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.type, "authentication_error");
    const bad = new Anthropic({ baseURL: `${service.url}/anthropic`, apiKey: "sk-wrong", maxRetries: 0 });
    await assert.rejects(bad.messages.create(good as never), Anthropic.AuthenticationError);
    await assert.rejects(client.messages.create({ ...good, model: "no-such-model" }), Anthropic.NotFoundError);
  });

  test("the local key works in either header; anthropic-version and anthropic-beta are accepted and ignored", async () => {
    const viaApiKey = await post("/anthropic/v1/messages", good, { "x-api-key": service.localKey!, "anthropic-beta": "interleaved-thinking-2025-05-14" });
    assert.equal(viaApiKey.status, 200);
    const viaBearer = await post("/anthropic/v1/messages", good, { authorization: `Bearer ${service.localKey}` });
    assert.equal(viaBearer.status, 200);
    assert.deepEqual(viaBearer.json.content, viaApiKey.json.content);
  });

  test("an unknown path under /anthropic is a 404 in Anthropic's shape; /v1 keeps OpenAI's shape", async () => {
    const missing = await fetch(`${service.url}/anthropic/v1/nothing`, { headers: service.localAuth });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.type, "not_found_error");
    const v1 = await post("/v1/chat/completions", { model: "scripted" });
    assert.equal(v1.status, 400);
    assert.equal(v1.json.error.type, "invalid_request_error");
    assert.equal(v1.json.type, undefined);
  });

  test("GET /anthropic/v1/models lists the models in Anthropic's shape", async () => {
    const page = await client.models.list();
    assert.deepEqual(page.data.map((m) => [m.type, m.id]).sort(), [["model", "scripted"], ["model", "scripted-long"]]);
    const one = await client.models.retrieve("scripted");
    assert.equal(one.id, "scripted");
    await assert.rejects(client.models.retrieve("nope"), Anthropic.NotFoundError);
  });
});

/**
 * Chat prefix completion (DeepSeek beta) and /v1/completions (plain and fill-in-the-middle), over
 * HTTP against real llama.cpp. `scripted-fim` has Qwen2.5-Coder's FIM tokens and emits "return a + b"
 * after `<|fim_middle|>` whatever the prefix and suffix; after BOS it writes "The quick brown fox
 * jumps over the lazy dog." (src/gguf/scripts.ts). `scripted` has no FIM tokens.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { FEATURE_SCRIPTS, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { listRequests } from "../src/store/requestLog.ts";
import { startTestService, type TestService } from "./support/service.ts";

const fim = FEATURE_SCRIPTS["scripted-fim"]!;
const scripted = MODEL_SCRIPTS.scripted!;
const FIM_BODY = { model: "scripted-fim", prompt: "def add(a, b):\n    ", suffix: "\n\nprint(add(1, 2))", max_tokens: 64 };

let service: TestService;
let client: OpenAI;

before(async () => {
  service = await startTestService({ models: ["scripted-fim", "scripted"] });
  client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey!, maxRetries: 0 });
});
after(() => service.stop());

async function post(path: string, body: object) {
  const response = await fetch(`${service.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** Reads an SSE response: its JSON data events, and whether it ended with [DONE]. */
async function postStream(path: string, body: object) {
  const response = await fetch(`${service.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const events = (await response.text()).split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
  assert.equal(events.at(-1), "[DONE]");
  return events.slice(0, -1).map((e) => JSON.parse(e));
}

describe("chat prefix completion", () => {
  test("the answer continues the assistant's prefix; content is the continuation only", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages: [
        { role: "user", content: "Who are you?" },
        { role: "assistant", content: "Hello! I am the", prefix: true } as never,
      ],
      temperature: 0,
    });
    assert.equal(completion.choices[0]!.message.content, " scripted test model. The answer is 42.");
    assert.equal("Hello! I am the" + completion.choices[0]!.message.content, scripted.answer);
    assert.equal(completion.choices[0]!.finish_reason, "stop");
  });

  test("under DeepSeek's beta base URL, streamed, leading whitespace of the continuation kept", async () => {
    const beta = new OpenAI({ baseURL: `${service.url}/beta`, apiKey: service.localKey!, maxRetries: 0 });
    const stream = await beta.chat.completions.create({
      model: "scripted-fim",
      messages: [
        { role: "user", content: "Code, please." },
        { role: "assistant", content: "Here is", prefix: true } as never,
      ],
      temperature: 0,
      stream: true,
    });
    let content = "";
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(content, " the code.");
    const { status, body } = await post("/beta/v1/chat/completions", {
      model: "scripted-fim",
      messages: [{ role: "user", content: "x" }, { role: "assistant", content: "Here is the", prefix: true }],
      temperature: 0,
    });
    assert.equal(status, 200);
    assert.equal(body.choices[0].message.content, " code.");
  });

  test("prefix anywhere but on the last, assistant message is a 400 naming it", async () => {
    for (const [messages, param] of [
      [[{ role: "user", content: "hi", prefix: true }], "messages[0].prefix"],
      [[{ role: "assistant", content: "a", prefix: true }, { role: "user", content: "b" }], "messages[0].prefix"],
    ] as const) {
      const { status, body } = await post("/v1/chat/completions", { model: "scripted", messages });
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal(body.error.param, param);
    }
  });
});

describe("/v1/completions", () => {
  test("FIM: the scripted middle exactly, OpenAI's text_completion shape, exact usage", async () => {
    const { status, body } = await post("/v1/completions", { ...FIM_BODY, temperature: 0 });
    assert.equal(status, 200, JSON.stringify(body));
    assert.match(body.id, /^cmpl-/);
    assert.equal(body.object, "text_completion");
    assert.equal(body.model, "scripted-fim");
    assert.deepEqual(body.choices, [{ text: fim.fimMiddle, index: 0, logprobs: null, finish_reason: "stop" }]);
    const local = (service.router.engineFor("scripted-fim") as any).get("scripted-fim");
    const promptTokens = local.promptTokens({ messages: [], completion: { prompt: FIM_BODY.prompt, suffix: FIM_BODY.suffix } }).length;
    assert.equal(body.usage.prompt_tokens, promptTokens);
    // "return", " a", " ", "+", " b", then EOS.
    assert.equal(body.usage.completion_tokens, 6);
    assert.equal(body.usage.total_tokens, promptTokens + 6);
    assert.equal(body.usage.prompt_cache_hit_tokens + body.usage.prompt_cache_miss_tokens, promptTokens);
  });

  test("FIM streamed, through the openai SDK's completions API and DeepSeek's beta path", async () => {
    const stream = await new OpenAI({ baseURL: `${service.url}/beta`, apiKey: service.localKey!, maxRetries: 0 }).completions.create({
      ...FIM_BODY,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, "text_completion");
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.ok(chunks > 3, "streamed in pieces");
    assert.equal(text, fim.fimMiddle);
    assert.equal(finish, "stop");
    assert.equal(usage?.completion_tokens, 6);
    const events = await postStream("/beta/v1/completions", { ...FIM_BODY, temperature: 0 });
    assert.equal(events.map((e) => e.choices[0].text).join(""), fim.fimMiddle);
  });

  test("plain completion (no suffix): the prompt continued, no chat template; stop and max_tokens", async () => {
    const plain = await client.completions.create({ model: "scripted-fim", prompt: "The quick brown", temperature: 0, max_tokens: 32 });
    assert.equal(plain.choices[0]!.text, " fox jumps over the lazy dog.");
    assert.equal(plain.choices[0]!.finish_reason, "stop");
    const stopped = await client.completions.create({ model: "scripted-fim", prompt: "The quick brown", temperature: 0, stop: [" over"] });
    assert.equal(stopped.choices[0]!.text, " fox jumps");
    assert.equal(stopped.choices[0]!.finish_reason, "stop");
    const cut = await client.completions.create({ model: "scripted-fim", prompt: "The quick brown", temperature: 0, max_tokens: 2 });
    assert.equal(cut.choices[0]!.text, " fox jumps");
    assert.equal(cut.choices[0]!.finish_reason, "length");
    assert.equal(cut.usage?.completion_tokens, 2);
    // OpenAI's legacy default is 16 tokens; the continuation is shorter.
    const byDefault = await client.completions.create({ model: "scripted-fim", prompt: ["The quick brown"], temperature: 0 });
    assert.equal(byDefault.choices[0]!.text, " fox jumps over the lazy dog.");
  });

  test("legacy logprobs: tokens, token_logprobs, top_logprobs and text offsets, streamed and not", async () => {
    const { body } = await post("/v1/completions", { ...FIM_BODY, temperature: 0, logprobs: 2 });
    const lp = body.choices[0].logprobs;
    assert.deepEqual(lp.tokens, ["return", " a", " ", "+", " b"]);
    assert.equal(lp.tokens.join(""), body.choices[0].text);
    assert.deepEqual(lp.text_offset, [0, 6, 8, 9, 10]);
    for (const [i, token] of lp.tokens.entries()) {
      assert.ok(Math.abs(lp.token_logprobs[i]) < 1e-6, "scripted tokens are certain");
      assert.equal(Object.keys(lp.top_logprobs[i]).length, 2);
      assert.equal(lp.top_logprobs[i][token], lp.token_logprobs[i]);
    }
    const events = await postStream("/v1/completions", { ...FIM_BODY, temperature: 0, logprobs: 2 });
    const streamed = events.flatMap((e) => e.choices[0]?.logprobs?.tokens ?? []);
    const offsets = events.flatMap((e) => e.choices[0]?.logprobs?.text_offset ?? []);
    assert.deepEqual(streamed, lp.tokens);
    assert.deepEqual(offsets, lp.text_offset);
  });

  test("a model without FIM tokens: 400 naming the model and suffix; without suffix it completes", async () => {
    const { status, body } = await post("/v1/completions", { ...FIM_BODY, model: "scripted" });
    assert.equal(status, 400);
    assert.equal(body.error.param, "suffix");
    assert.equal(body.error.code, "fim_not_supported");
    assert.match(body.error.message, /'scripted'/);
    const plain = await post("/v1/completions", { model: "scripted", prompt: "Hi", max_tokens: 3 });
    assert.equal(plain.status, 200);
    assert.equal(plain.body.usage.completion_tokens, 3);
  });

  test("what is not supported is a 400 naming the parameter", async () => {
    const cases: Array<[object, string]> = [
      [{ echo: true }, "echo"],
      [{ n: 2 }, "n"],
      [{ best_of: 3 }, "best_of"],
      [{ prompt: ["a", "b"] }, "prompt"],
      [{ prompt: [[1, 2, 3]] }, "prompt"],
      [{ logprobs: 21 }, "logprobs"],
      [{ logit_bias: { "999999": 1 } }, "logit_bias"],
      [{ model: "nope" }, "model"],
    ];
    for (const [extra, param] of cases) {
      const { status, body } = await post("/v1/completions", { ...FIM_BODY, ...extra });
      assert.equal(status, param === "model" ? 404 : 400, `${JSON.stringify(extra)}: ${JSON.stringify(body)}`);
      assert.equal(body.error.param, param, JSON.stringify(extra));
    }
  });

  test("a prompt over the context is refused before generating, naming prompt", async () => {
    const { status, body } = await post("/v1/completions", { model: "scripted-fim", prompt: "word ".repeat(5000), max_tokens: 1 });
    assert.equal(status, 400);
    assert.equal(body.error.code, "context_length_exceeded");
    assert.equal(body.error.param, "prompt");
  });

  test("completions go through the one pipeline: the request log has them, with their usage", async () => {
    const before = (await listRequests(service.store.db, { limit: 1000 })).length;
    const { body } = await post("/beta/completions", { ...FIM_BODY, temperature: 0 });
    const rows = await listRequests(service.store.db, { limit: 1000 });
    assert.equal(rows.length, before + 1);
    const row = rows.find((r) => r.model === "scripted-fim" && r.prompt_tokens === body.usage.prompt_tokens && r.completion_tokens === body.usage.completion_tokens);
    assert.ok(row, "logged with its usage");
    assert.equal(row.status, 200);
    assert.equal(row.cache_hit_tokens, body.usage.prompt_cache_hit_tokens);
  });
});

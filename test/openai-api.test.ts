import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { LocalEngine } from "../src/engines/local/localEngine.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { listRequests } from "../src/store/requestLog.ts";
import { startTestService, type TestService } from "./support/service.ts";

type ReasoningMessage = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };
type ReasoningDelta = OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta & { reasoning_content?: string | null };
type DeepSeekUsage = OpenAI.CompletionUsage & { prompt_cache_hit_tokens: number; prompt_cache_miss_tokens: number };

const scripted = MODEL_SCRIPTS.scripted!;
let service: TestService;
let client: OpenAI;

before(async () => {
  service = await startTestService({ models: ["scripted", "scripted-unicode", "scripted-json", "scripted-long"] });
  // Local single-user mode: the data directory's local key is the API key (src/auth/localMode.ts).
  client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey!, maxRetries: 0 });
});
after(() => service.stop());

async function post(path: string, body: string | object, headers: Record<string, string> = {}) {
  const response = await fetch(`${service.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json().catch(() => null)) as any };
}

function assertUsage(usage: DeepSeekUsage | undefined) {
  assert.ok(usage, "usage present");
  assert.ok(usage.prompt_tokens > 0);
  assert.ok(usage.completion_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  assert.equal(usage.prompt_cache_hit_tokens + usage.prompt_cache_miss_tokens, usage.prompt_tokens);
  const reasoningTokens = usage.completion_tokens_details?.reasoning_tokens ?? 0;
  assert.ok(reasoningTokens > 0 && reasoningTokens < usage.completion_tokens, "reasoning tokens counted apart");
}

describe("OpenAI SDK against the local engine", () => {
  test("non-streamed: exact reasoning_content and content, DeepSeek usage", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "What is the answer?" }],
    });
    const message = completion.choices[0]!.message as ReasoningMessage;
    assert.equal(message.reasoning_content, scripted.reasoning);
    assert.equal(message.content, scripted.answer);
    assert.equal(completion.choices[0]!.finish_reason, "stop");
    assert.equal(completion.object, "chat.completion");
    assertUsage(completion.usage as DeepSeekUsage);
  });

  test("streamed: deltas join to the same texts, usage chunk at the end", async () => {
    const stream = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "Stream it, please." }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let reasoning = "";
    let content = "";
    let usage: DeepSeekUsage | undefined;
    let finish: string | null = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      const delta = chunk.choices[0]?.delta as ReasoningDelta | undefined;
      if (delta?.reasoning_content) reasoning += delta.reasoning_content;
      if (delta?.content) content += delta.content;
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      if (chunk.usage) usage = chunk.usage as DeepSeekUsage;
    }
    assert.ok(chunks > 5, "streamed in several chunks");
    assert.equal(reasoning, scripted.reasoning);
    assert.equal(content, scripted.answer);
    assert.equal(finish, "stop");
    assertUsage(usage);
  });

  test("earlier turns' reasoning_content is never fed back to the model", async () => {
    const base = [
      { role: "user" as const, content: "First question" },
      { role: "assistant" as const, content: scripted.answer },
      { role: "user" as const, content: "Second question" },
    ];
    const withoutReasoning = await client.chat.completions.create({ model: "scripted", messages: base });
    const withReasoning = await client.chat.completions.create({
      model: "scripted",
      messages: [base[0]!, { ...base[1]!, reasoning_content: "A very long earlier chain of thought ".repeat(20) } as never, base[2]!],
    });
    assert.equal(withReasoning.usage!.prompt_tokens, withoutReasoning.usage!.prompt_tokens);
    assert.equal((withReasoning.choices[0]!.message as ReasoningMessage).reasoning_content, scripted.reasoning);
  });

  test("the next turn after a streamed answer evaluates only its new message: the answer was re-read while idle", async () => {
    const rereads = async () => {
      const text = await (await fetch(`${service.url}/metrics`)).text();
      return Number(/^sputnik_engine_rereads_total\{model="scripted",outcome="completed"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    const before = await rereads();
    const turn1 = [{ role: "user" as const, content: "A question that starts a brand new conversation" }];
    let answer = "";
    let firstPrompt = 0;
    const stream = await client.chat.completions.create({ model: "scripted", messages: turn1, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      answer += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) firstPrompt = chunk.usage.prompt_tokens;
    }
    assert.equal(answer, scripted.answer);
    // The engine re-reads the answer after the response, while no request needs the sequence.
    const deadline = Date.now() + 10_000;
    while ((await rereads()) === before) {
      assert.ok(Date.now() < deadline, "the answer was re-read within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const turn2 = await client.chat.completions.create({ model: "scripted", messages: [...turn1, { role: "assistant", content: answer }, { role: "user", content: "Thanks, and then?" }] });
    const usage = turn2.usage as DeepSeekUsage;
    assertUsage(usage);
    assert.ok(usage.prompt_cache_hit_tokens > firstPrompt, `hits ${usage.prompt_cache_hit_tokens} cover the first prompt (${firstPrompt}) and the answer`);
    assert.ok(usage.prompt_cache_miss_tokens <= 12, `only the new message is evaluated (${usage.prompt_cache_miss_tokens} tokens)`);
  });

  test("characters split across tokens arrive whole", async () => {
    const expected = MODEL_SCRIPTS["scripted-unicode"]!;
    const stream = await client.chat.completions.create({
      model: "scripted-unicode",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
    });
    let content = "";
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content ?? "";
      assert.ok(!piece.includes("\uFFFD"), `no broken character in ${JSON.stringify(piece)}`);
      content += piece;
    }
    assert.equal(content, expected.answer);
  });

  test("response_format json_object yields parseable JSON", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted-json",
      messages: [{ role: "user", content: "Answer in JSON" }],
      response_format: { type: "json_object" },
    });
    const content = completion.choices[0]!.message.content!;
    assert.deepEqual(JSON.parse(content), JSON.parse(MODEL_SCRIPTS["scripted-json"]!.answer));
  });

  test("max_tokens caps the reply with finish_reason length", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted-long",
      messages: [{ role: "user", content: "Think a lot" }],
      max_tokens: 5,
    });
    assert.equal(completion.choices[0]!.finish_reason, "length");
    assert.equal(completion.usage!.completion_tokens, 5);
  });

  test("a stop sequence ends the answer before it", async () => {
    const answer = scripted.answer;
    const stopAt = "answer is";
    assert.ok(answer.includes(stopAt) && !scripted.reasoning.includes(stopAt), "script fits this test");
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "Hi" }],
      stop: [stopAt],
    });
    assert.equal(completion.choices[0]!.message.content, answer.slice(0, answer.indexOf(stopAt)).trimEnd());
    assert.equal(completion.choices[0]!.finish_reason, "stop");
  });

  test("/v1/models lists the served models", async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ["scripted", "scripted-json", "scripted-long", "scripted-unicode"]);
  });

  test("/health really probes the engine", async () => {
    const response = await fetch(`${service.url}/health`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { status: string; engines: string };
    assert.equal(body.status, "ok");
    assert.match(body.engines, /scripted: ok/);
  });
});

describe("bad input gets the right 4xx and the server keeps serving", () => {
  const good = { model: "scripted", messages: [{ role: "user", content: "hi" }] };
  const cases: Array<[string, string | object, number, string | null]> = [
    ["malformed JSON", '{"model": "scripted", "messages": [', 400, null],
    ["messages of the wrong type", { model: "scripted", messages: "hello" }, 400, "messages"],
    ["empty messages", { model: "scripted", messages: [] }, 400, "messages"],
    ["unknown role", { model: "scripted", messages: [{ role: "wizard", content: "x" }] }, 400, "messages[0].role"],
    ["model missing", { messages: [{ role: "user", content: "x" }] }, 400, "model"],
    ["negative max_tokens", { ...good, max_tokens: -1 }, 400, "max_tokens"],
    ["huge max_tokens", { ...good, max_tokens: 1e12 }, 400, "max_tokens"],
    ["fractional max_tokens", { ...good, max_tokens: 1.5 }, 400, "max_tokens"],
    ["temperature out of range", { ...good, temperature: 7 }, 400, "temperature"],
    ["top_p zero", { ...good, top_p: 0 }, 400, "top_p"],
    ["n above 1", { ...good, n: 3 }, 400, "n"],
    ["stream as string", { ...good, stream: "yes" }, 400, "stream"],
    ["unknown model", { ...good, model: "no-such-model" }, 404, "model"],
    ["max_tokens beyond the context", { ...good, max_tokens: 100_000 }, 400, "max_tokens"],
  ];
  for (const [name, body, status, param] of cases) {
    test(name, async () => {
      const response = await post("/v1/chat/completions", body);
      assert.equal(response.status, status, JSON.stringify(response.body));
      assert.equal(typeof response.body.error.message, "string");
      assert.equal(typeof response.body.error.type, "string");
      if (param) assert.equal(response.body.error.param, param);
    });
  }

  test("an oversized prompt is refused as context_length_exceeded, not truncated", async () => {
    const huge = "lorem ipsum dolor sit amet ".repeat(2000);
    const response = await post("/v1/chat/completions", { model: "scripted", messages: [{ role: "user", content: huge }] });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, "context_length_exceeded");
  });

  test("a body over the size limit is a 413", async () => {
    const response = await post("/v1/chat/completions", { ...good, messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }] });
    assert.equal(response.status, 413);
  });

  test("unknown routes answer 404 in the API's error shape", async () => {
    const response = await fetch(`${service.url}/v1/nothing-here`, { headers: service.localAuth });
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { type: string } };
    assert.equal(body.error.type, "not_found_error");
  });

  test("after all that, the server still answers", async () => {
    const completion = await client.chat.completions.create(good as never);
    assert.equal((completion as OpenAI.Chat.Completions.ChatCompletion).choices[0]!.message.content, scripted.answer);
  });
});

describe("a client that leaves mid-stream", () => {
  test("aborts its generation and frees the sequence for the next request", async () => {
    const long = MODEL_SCRIPTS["scripted-long"]!;
    const model = (service.router.engineFor("scripted-long") as LocalEngine).get("scripted-long");
    assert.ok(model, "local model handle");
    const controller = new AbortController();
    const response = await fetch(`${service.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...service.localAuth },
      body: JSON.stringify({ model: "scripted-long", messages: [{ role: "user", content: "go" }], stream: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    let received = "";
    while (!received.includes("reasoning_content\":\"")) {
      const { value } = await reader.read();
      received += new TextDecoder().decode(value);
    }
    controller.abort();
    // The sequence must come free long before the rest of the long script could be generated.
    const deadline = Date.now() + 2000;
    while (model.pool.busyCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(model.pool.busyCount, 0, "sequence released");
    const next = await client.chat.completions.create({ model: "scripted-long", messages: [{ role: "user", content: "again" }] });
    assert.equal((next.choices[0]!.message as ReasoningMessage).reasoning_content, long.reasoning);
    // The request log shows the abandoned request as 499 with only part of the script generated.
    await new Promise((r) => setTimeout(r, 50));
    const rows = await listRequests(service.store.db, { limit: 50 });
    const abandoned = rows.find((r) => r.model === "scripted-long" && r.status === 499);
    assert.ok(abandoned, "abandoned request logged as 499");
    assert.ok(abandoned.completion_tokens < next.usage!.completion_tokens, "generation stopped early");
  });
});

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startTestService, type TestService } from "./support/service.ts";

/**
 * The remote engine, tested against a real upstream: a second Sputnik process-in-process serving
 * the scripted model. The gateway knows the upstream only from its config.
 */
const scripted = MODEL_SCRIPTS.scripted!;
let upstream: TestService;
let gateway: TestService;
let client: OpenAI;

before(async () => {
  upstream = await startTestService({ models: ["scripted"] });
  // Both run in local single-user mode: the gateway's operator gives it the upstream's local key.
  gateway = await startTestService(
    {
      models: [],
      config: { remoteModels: [{ id: "via-upstream", baseUrl: `${upstream.url}/v1`, upstreamModel: "scripted", apiKey: upstream.localKey! }] },
    },
  );
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.localKey!, maxRetries: 0 });
});
after(async () => {
  await gateway.stop();
  await upstream.stop();
});

test("the gateway lists the upstream model and reports it as remote", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => [m.id, (m as unknown as { engine: string }).engine]), [["via-upstream", "remote"]]);
});

test("non-streamed through the remote engine: same reasoning and answer, upstream usage", async () => {
  const completion = await client.chat.completions.create({ model: "via-upstream", messages: [{ role: "user", content: "Hi" }] });
  const message = completion.choices[0]!.message as { content: string; reasoning_content?: string };
  assert.equal(message.reasoning_content, scripted.reasoning);
  assert.equal(message.content, scripted.answer);
  const direct = await new OpenAI({ baseURL: `${upstream.url}/v1`, apiKey: upstream.localKey!, maxRetries: 0 }).chat.completions.create({
    model: "scripted",
    messages: [{ role: "user", content: "Hi" }],
  });
  assert.equal(completion.usage!.prompt_tokens, direct.usage!.prompt_tokens);
  assert.equal(completion.usage!.completion_tokens, direct.usage!.completion_tokens);
  assert.equal(
    completion.usage!.completion_tokens_details?.reasoning_tokens,
    direct.usage!.completion_tokens_details?.reasoning_tokens,
  );
});

test("streamed through the remote engine: deltas join to the same texts", async () => {
  const stream = await client.chat.completions.create({
    model: "via-upstream",
    messages: [{ role: "user", content: "Stream" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let reasoning = "";
  let content = "";
  let sawUsage = false;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string | null } | undefined;
    reasoning += delta?.reasoning_content ?? "";
    content += delta?.content ?? "";
    if (chunk.usage) sawUsage = chunk.usage.completion_tokens > 0;
  }
  assert.equal(reasoning, scripted.reasoning);
  assert.equal(content, scripted.answer);
  assert.ok(sawUsage);
});

test("an upstream error keeps its client-error status and the API's error shape", async () => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...gateway.localAuth },
    body: JSON.stringify({ model: "via-upstream", messages: [{ role: "user", content: "x ".repeat(5000) }] }),
  });
  assert.equal(response.status, 400);
  const body = (await response.json()) as { error: { message: string } };
  assert.match(body.error.message, /maximum context length/);
});

test("a client cannot pick the upstream URL", async () => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...gateway.localAuth },
    body: JSON.stringify({ model: `${upstream.url}/v1`, base_url: "http://127.0.0.1:1", messages: [{ role: "user", content: "x" }] }),
  });
  assert.equal(response.status, 404);
});

/**
 * Agent and tool loops send their next turn the moment an answer ends: the answer's next-turn form
 * is prepared while it is generated (src/engines/local/nextTurnAhead.ts), so that turn evaluates
 * only its own new message.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import type { LocalEngine } from "../src/engines/local/localEngine.ts";
import type { ChatMessage } from "../src/engines/types.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { collect, loadTestModel } from "./support/engine.ts";
import { startTestService, type TestService } from "./support/service.ts";

type DeepSeekUsage = OpenAI.CompletionUsage & { prompt_cache_hit_tokens: number; prompt_cache_miss_tokens: number };

const markdown = MODEL_SCRIPTS["scripted-markdown"]!;
let service: TestService;
let client: OpenAI;

before(async () => {
  service = await startTestService({ models: ["scripted-markdown"] });
  client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey!, maxRetries: 0 });
});
after(() => service.stop());

async function streamed(messages: ChatMessage[]): Promise<{ content: string; usage: DeepSeekUsage }> {
  const stream = await client.chat.completions.create({
    model: "scripted-markdown",
    messages: messages as OpenAI.Chat.Completions.ChatCompletionMessageParam[],
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0,
  });
  let content = "";
  let usage: DeepSeekUsage | undefined;
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage as DeepSeekUsage;
  }
  assert.ok(usage, "usage streamed");
  return { content, usage };
}

test("a next turn sent the moment the answer ends evaluates only its new message and the template's tokens", async () => {
  const model = (service.router.engineFor("scripted-markdown") as LocalEngine).get("scripted-markdown")!;
  const turn1: ChatMessage[] = [
    { role: "system", content: "You are an agent. Call tools and report." },
    { role: "user", content: "Format the build report." },
  ];
  const first = await streamed(turn1);
  assert.equal(first.content, markdown.answer);
  // Turn 2 carries an answer: its own answer is prepared in next-turn form while it streams.
  const turn2: ChatMessage[] = [...turn1, { role: "assistant", content: first.content }, { role: "user", content: "Now the test report." }];
  const prepared = model.stats().reread.ahead.prepared;
  const second = await streamed(turn2);
  assert.equal(second.content, markdown.answer);

  // Sent at once, as a loop does.
  const message = "And the deploy report.";
  const turn3: ChatMessage[] = [...turn2, { role: "assistant", content: second.content }, { role: "user", content: message }];
  const third = await streamed(turn3);
  const { prompt_tokens: prompt, prompt_cache_hit_tokens: hit, prompt_cache_miss_tokens: miss } = third.usage;
  assert.equal(hit + miss, prompt);
  await model.rereadsDone();
  assert.equal(model.stats().reread.ahead.prepared, prepared + 2, "the answers of turns 2 and 3 were prepared while generated");

  const prefix = model.nextTurnTokens(turn2, second.content).length;
  const own = model.model.tokenize(message).length;
  const template = prompt - prefix - own;
  assert.ok(prefix - second.usage.prompt_tokens > 100, "the answer sent back is long: evaluating it again would show");
  assert.ok(template >= 0 && template <= 4, `template tokens around the message: ${template}`);
  assert.ok(miss <= own + template, `miss ${miss}: only the message (${own}) and the template (${template})`);
  assert.equal(hit, prefix, "the whole history, answer included, was reused");
});

test("a request that needs the spare sequence stops the preparation within a step", async (t) => {
  const model = await loadTestModel(t, "scripted-markdown", { parallel: 2 });
  const history: ChatMessage[] = [
    { role: "user", content: "Format something." },
    { role: "assistant", content: "Done." },
    { role: "user", content: "Again, with a table." },
  ];
  let other: Promise<unknown> | null = null;
  let content = "";
  for await (const event of model.generate({ model: model.options.id, messages: history, temperature: 0 })) {
    if (event.type !== "content") continue;
    content += event.text;
    // Both sequences are taken (this answer and its preparation): a new conversation needs one.
    if (!other && content.length > 40) other = collect(model, [{ role: "user", content: "Something unrelated entirely." }], {}, { waitForReread: false });
  }
  assert.ok(other, "the second request was sent while the answer streamed");
  const second = (await other) as Awaited<ReturnType<typeof collect>>;
  assert.equal(content, markdown.answer);
  assert.equal(second.content, markdown.answer);
  await model.rereadsDone();
  const { ahead } = model.stats().reread;
  assert.equal(ahead.abandoned, 1, "the preparation gave its sequence up");
  assert.equal(ahead.prepared, 0);
});

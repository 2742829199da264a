import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { collect, loadTestModel } from "./support/engine.ts";
import { startTestService } from "./support/service.ts";

const long = MODEL_SCRIPTS["scripted-long"]!;

type ReasoningMessage = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };

test("reasoning_tokens counts exactly the tokens of the thought, markers included", async (t) => {
  const model = await loadTestModel(t, "scripted-long");
  const full = await collect(model, [{ role: "user", content: "Think" }]);
  assert.equal(full.reasoning, long.reasoning);
  // The thought's own tokens plus <think> and </think>; the answer's tokens are the rest.
  const thoughtTokens = model.model.tokenize(long.reasoning).length + 2;
  assert.equal(full.usage.completion_tokens_details.reasoning_tokens, thoughtTokens);
  assert.ok(full.usage.completion_tokens >= thoughtTokens + model.model.tokenize(long.answer).length);
});

test("a budget of N reasoning tokens yields at most N, and the answer still follows", async (t) => {
  const model = await loadTestModel(t, "scripted-long");
  for (const budget of [0, 1, 12]) {
    const result = await collect(model, [{ role: "user", content: `Budget ${budget}` }], { thinkingBudget: budget });
    const used = result.usage.completion_tokens_details.reasoning_tokens;
    assert.ok(used <= budget, `budget ${budget}: ${used} reasoning tokens`);
    assert.ok(long.reasoning.startsWith(result.reasoning), "the thought is cut, not changed");
    assert.equal(result.content, long.answer, `budget ${budget}: the answer follows`);
    assert.equal(result.finishReason, "stop");
  }
});

test("the operator's cap per model bounds every request, through the API", async (t) => {
  const service = await startTestService({
    models: ["scripted-long", "scripted"],
    config: { localEngine: { models: { "scripted-long": { maxThinkingTokens: 8 } } } },
  });
  t.after(() => service.stop());
  const client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey!, maxRetries: 0 });
  const ask = async (model: string, extra: Record<string, unknown>) => {
    const completion = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Go" }], ...extra } as never);
    return completion as OpenAI.Chat.Completions.ChatCompletion;
  };

  const uncapped = await ask("scripted-long", {});
  const askedForMore = await ask("scripted-long", { thinking: { type: "enabled", budget_tokens: 1000 } });
  const askedForLess = await ask("scripted-long", { thinking: { type: "enabled", budget_tokens: 3 } });
  const effort = await ask("scripted-long", { reasoning_effort: "high" });
  for (const [label, completion, limit] of [["no budget", uncapped, 8], ["1000", askedForMore, 8], ["3", askedForLess, 3], ["effort high", effort, 8]] as const) {
    const used = completion.usage!.completion_tokens_details!.reasoning_tokens!;
    assert.ok(used <= limit, `${label}: ${used} reasoning tokens, limit ${limit}`);
    assert.equal(completion.choices[0]!.message.content, long.answer, `${label}: the answer follows`);
  }
  // A model without a cap reasons in full.
  const other = await ask("scripted", {});
  assert.equal((other.choices[0]!.message as ReasoningMessage).reasoning_content, MODEL_SCRIPTS.scripted!.reasoning);
});

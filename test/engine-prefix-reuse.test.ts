import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatMessage } from "../src/engines/types.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { collect, inputMeter, loadTestModel } from "./support/engine.ts";

const scripted = MODEL_SCRIPTS.scripted!;

test("the second turn evaluates only its new tokens and reports them exactly", async (t) => {
  const model = await loadTestModel(t, "scripted", { parallel: 2 });
  const turn1: ChatMessage[] = [{ role: "system", content: "You are a careful assistant who answers every question briefly." }, { role: "user", content: "What is the answer to the first question?" }];

  let meter = inputMeter(model);
  const first = await collect(model, turn1);
  assert.equal(first.content, scripted.answer);
  assert.equal(first.usage.prompt_cache_hit_tokens, 0, "nothing cached yet");
  assert.equal(first.usage.prompt_cache_miss_tokens, first.usage.prompt_tokens);
  // The meters count every evaluated prompt token but the one whose logits start the answer.
  assert.equal(inputMeter(model) - meter, first.usage.prompt_cache_miss_tokens - 1);

  const turn2: ChatMessage[] = [...turn1, { role: "assistant", content: first.content }, { role: "user", content: "And the second?" }];
  meter = inputMeter(model);
  const second = await collect(model, turn2);
  assert.equal(second.content, scripted.answer);
  const { prompt_tokens: prompt, prompt_cache_hit_tokens: hit, prompt_cache_miss_tokens: miss } = second.usage;
  assert.equal(hit + miss, prompt);
  assert.equal(inputMeter(model) - meter, miss - 1, "reported misses are the tokens llama.cpp evaluated");
  // Only what follows the first turn's prompt is new: the answer as sent back, and the new question.
  const newTokens = prompt - first.usage.prompt_tokens;
  assert.ok(hit >= first.usage.prompt_tokens - 1, `hit ${hit} covers the first prompt (${first.usage.prompt_tokens})`);
  assert.ok(miss <= newTokens + 1, `miss ${miss} ≤ new tokens ${newTokens} + 1`);
  assert.equal(second.usage.prompt_tokens_details.cached_tokens, hit);
});

test("a request is placed on the sequence that holds its conversation", async (t) => {
  const model = await loadTestModel(t, "scripted", { parallel: 2 });
  const a: ChatMessage[] = [{ role: "user", content: "Conversation A starts with a fairly long first message." }];
  const b: ChatMessage[] = [{ role: "user", content: "Conversation B is a different one, also with a long message." }];
  const firstA = await collect(model, a);
  const firstB = await collect(model, b); // lands on the other, unused sequence
  const nextA = await collect(model, [...a, { role: "assistant", content: firstA.content }, { role: "user", content: "More A" }]);
  const nextB = await collect(model, [...b, { role: "assistant", content: firstB.content }, { role: "user", content: "More B" }]);
  assert.ok(nextA.usage.prompt_cache_hit_tokens >= firstA.usage.prompt_tokens - 1, "A found its history");
  assert.ok(nextB.usage.prompt_cache_hit_tokens >= firstB.usage.prompt_tokens - 1, "B found its history");
});

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
  let reread = model.stats().reread.tokens;
  const first = await collect(model, turn1);
  assert.equal(first.content, scripted.answer);
  assert.equal(first.usage.prompt_cache_hit_tokens, 0, "nothing cached yet");
  assert.equal(first.usage.prompt_cache_miss_tokens, first.usage.prompt_tokens);
  // After the answer the engine re-read it in the form the next turn sends it (without the reasoning).
  const rereadTokens = model.stats().reread.tokens - reread;
  assert.ok(rereadTokens > 0, "the answer was re-read after the request");
  assert.equal(model.stats().reread.completed, 1);
  // The meters count every evaluated prompt token but the one whose logits start the answer.
  assert.equal(inputMeter(model) - meter, first.usage.prompt_cache_miss_tokens - 1 + rereadTokens);

  const question = "And the second?";
  const turn2: ChatMessage[] = [...turn1, { role: "assistant", content: first.content }, { role: "user", content: question }];
  meter = inputMeter(model);
  reread = model.stats().reread.tokens;
  const second = await collect(model, turn2);
  assert.equal(second.content, scripted.answer);
  const { prompt_tokens: prompt, prompt_cache_hit_tokens: hit, prompt_cache_miss_tokens: miss } = second.usage;
  assert.equal(hit + miss, prompt);
  assert.equal(inputMeter(model) - meter, miss - 1 + (model.stats().reread.tokens - reread), "reported misses are the tokens llama.cpp evaluated");
  // The first turn's prompt and its answer as sent back are all hits: only the new question (and
  // the template's markers around it) is evaluated.
  const answerSentBack = model.nextTurnTokens(turn1, first.content).length;
  assert.ok(answerSentBack > first.usage.prompt_tokens, "the answer is part of the next turn's prefix");
  assert.equal(hit, answerSentBack);
  assert.ok(miss <= model.model.tokenize(question).length + 4, `miss ${miss}: the new question only`);
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

test("a request that needs the sequence stops the re-read of an answer at once", async (t) => {
  const model = await loadTestModel(t, "scripted-markdown", { parallel: 1 });
  const answer = MODEL_SCRIPTS["scripted-markdown"]!.answer;
  const first = await collect(model, [{ role: "user", content: "Format something for me." }], {}, { waitForReread: false });
  assert.equal(first.content, answer);
  // The only sequence is re-reading a long answer; another conversation needs it now.
  const other = await collect(model, [{ role: "user", content: "A different conversation altogether, please." }], {}, { waitForReread: false });
  assert.equal(other.content, answer);
  const stopped = model.stats().reread;
  assert.equal(stopped.abandoned, 1, "the first answer's re-read was abandoned for the waiting request");
  assert.equal(stopped.completed, 0);
  const full = model.nextTurnTokens([{ role: "user", content: "Format something for me." }], answer).length - first.usage.prompt_tokens;
  assert.ok(stopped.tokens < full, `it stopped early (${stopped.tokens} of ${full} tokens re-read)`);
  await model.rereadsDone();
  assert.equal(model.stats().reread.completed, 1, "the second answer, with no one waiting, was re-read in full");
});

test("a next turn sent while its answer is being re-read waits for its own sequence", async (t) => {
  const model = await loadTestModel(t, "scripted-markdown", { parallel: 2 });
  const turn1: ChatMessage[] = [{ role: "user", content: "Format something for me, with a table and some code." }];
  const first = await collect(model, turn1, {}, { waitForReread: false });
  // Sent at once: the other sequence is idle, but this conversation's history is on the busy one.
  const second = await collect(model, [...turn1, { role: "assistant", content: first.content }, { role: "user", content: "Thanks!" }]);
  assert.ok(second.usage.prompt_cache_hit_tokens >= first.usage.prompt_tokens, `hit ${second.usage.prompt_cache_hit_tokens} covers the first prompt (${first.usage.prompt_tokens})`);
});

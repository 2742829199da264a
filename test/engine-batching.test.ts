import assert from "node:assert/strict";
import { test } from "node:test";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import type { LocalModel } from "../src/engines/local/localModel.ts";
import { collect, loadTestModel } from "./support/engine.ts";

const long = MODEL_SCRIPTS["scripted-long"]!;

test("two concurrent requests are decoded in the same llama.cpp batches", async (t) => {
  const model = await loadTestModel(t, "scripted-long", { parallel: 2 });
  const before = model.stats().batches;
  const [a, b] = await Promise.all([
    collect(model, [{ role: "user", content: "First user" }]),
    collect(model, [{ role: "user", content: "Second user" }]),
  ]);
  const after = model.stats().batches;

  // Batching must not change what each request gets.
  assert.equal(a.reasoning, long.reasoning);
  assert.equal(b.reasoning, long.reasoning);
  assert.equal(a.content, long.answer);
  assert.equal(b.content, long.answer);

  const batches = after.batches - before.batches;
  const shared = after.sharedBatches - before.sharedBatches;
  assert.equal(after.maxSequencesInBatch, 2, "a batch carried tokens of both sequences");
  // One at a time would need a batch per generated token of each request; together they need
  // about one per token of the longer one.
  const generated = a.usage.completion_tokens + b.usage.completion_tokens;
  assert.ok(batches < generated * 0.75, `${batches} batches for ${generated} generated tokens`);
  assert.ok(shared > batches / 2, `${shared} of ${batches} batches were shared`);
});

test("the benchmark model batches concurrent requests too", async (t) => {
  // The realistic shape (24 layers, 151,936-token vocabulary) but only a few tokens: it is slow here.
  const model = await loadTestModel(t, "bench", { parallel: 2, contextSize: 256 });
  const before = model.stats().batches;
  const results = await Promise.all([
    collect(model, [{ role: "user", content: "one" }], { maxTokens: 6 }),
    collect(model, [{ role: "user", content: "two" }], { maxTokens: 6 }),
  ]);
  const after = model.stats().batches;
  for (const r of results) assert.equal(r.usage.completion_tokens, 6);
  assert.ok(after.sharedBatches - before.sharedBatches >= 3, `shared batches: ${after.sharedBatches - before.sharedBatches}`);
  assert.equal(after.maxSequencesInBatch, 2);
});

test("a stream that joins late falls into step with the running one", async (t) => {
  // On the realistic shape a decode takes tens of milliseconds: a late joiner used to stay a batch
  // out of step (its tokens ready while the other's batch ran), so the two alternated alone.
  const model = await loadTestModel(t, "bench", { parallel: 2, contextSize: 256 });
  const first = model.generate({ model: model.options.id, messages: [{ role: "user", content: "one" }], temperature: 0, maxTokens: 14 });
  let tokens = 0;
  let late: ReturnType<typeof collect> | null = null;
  let joined: ReturnType<LocalModel["stats"]>["batches"] | null = null;
  for await (const event of first) {
    if (event.type !== "reasoning" && event.type !== "content") continue;
    if (++tokens === 3 && !late) {
      joined = model.stats().batches;
      late = collect(model, [{ role: "user", content: "two" }], { maxTokens: 6 }, { waitForReread: false });
      await late; // the first stream keeps generating meanwhile (its tokens queue in the channel)
    }
  }
  const after = model.stats().batches;
  assert.ok(late && joined);
  assert.equal((await late).usage.completion_tokens, 6);
  // While both ran: the late prompt, then its 5 decode steps, each with the first stream's token.
  const shared = after.sharedBatches - joined.sharedBatches;
  assert.ok(shared >= 5, `${shared} shared batches while both streams ran`);
});

test("new conversations are placed next to the busy sequences, so their streams share micro-batches", async (t) => {
  const model = await loadTestModel(t, "scripted", { parallel: 8 });
  const prompt = model.promptTokens({ messages: [{ role: "user", content: "hello" }] });
  const all = [];
  for (let i = 0; i < 8; i++) all.push(await model.pool.acquire(prompt));
  // Free them so that the least recently used are every other one: 1, 3, 5, 7 first.
  for (const index of [1, 3, 5, 7, 0, 2, 4, 6]) {
    model.pool.release(all[index]!);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const taken = [];
  for (let i = 0; i < 4; i++) taken.push((await model.pool.acquire(prompt)).index);
  taken.sort((a, b) => a - b);
  // Least-recently-used alone would take 1, 3, 5, 7: four forward passes per token instead of one.
  // The first goes to the least recently used (1), the others grow the run around it: 0, then 2, 3.
  assert.deepEqual(taken, [0, 1, 2, 3], `sequences ${taken.join(", ")} are contiguous`);
});

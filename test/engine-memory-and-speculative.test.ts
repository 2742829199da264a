import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { loadConfig } from "../src/config/load.ts";
import { sharedLlama } from "../src/engines/local/llama.ts";
import { AUTO_PARALLEL_MAX, AUTO_PARALLEL_MEMORY_SHARE, estimateMemory, InsufficientMemoryForModelError, memoryEstimator } from "../src/engines/local/memoryCheck.ts";
import { ensureModel, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startService } from "../src/runtime/startService.ts";
import { collect, loadTestModel } from "./support/engine.ts";

const MiB = 1024 * 1024;
const scripted = MODEL_SCRIPTS.scripted!;

test("a model and context that would not fit are refused before loading, with the numbers", async (t) => {
  const layout = { contextSize: 8192, sequences: 8 };
  const estimate = await estimateMemory(await sharedLlama(), await ensureModel("bench"), layout);
  // Room for the weights and two and a half sequences.
  const budget = Math.floor(estimate.modelBytes + 2.5 * estimate.perSequenceBytes);
  await assert.rejects(loadTestModel(t, "bench", { parallel: 8, contextSize: 8192, memoryBudgetBytes: budget }), (error: Error) => {
    assert.ok(error instanceof InsufficientMemoryForModelError, error.message);
    assert.match(error.message, /^Model bench would need about [\d,]+ MiB \(weights [\d,]+ MiB \+ context [\d,]+ MiB for 8 sequence\(s\) × 8192 tokens\), but the configured memory budget is [\d,]+ MiB\. Lower parallel to 2 or the context size\.$/);
    return true;
  });
  await assert.rejects(loadTestModel(t, "bench", { memoryBudgetBytes: estimate.modelBytes - MiB }), /The weights alone do not fit/);
  await assert.rejects(
    loadTestModel(t, "bench", { parallel: 1, contextSize: 8192, memoryBudgetBytes: estimate.modelBytes + MiB }),
    /Even one sequence of 8192 tokens needs [\d,]+ MiB beside the weights/,
  );
  // The same kind of check lets a model that fits load.
  const fits = await loadTestModel(t, "scripted", { memoryBudgetBytes: 1024 * MiB });
  assert.equal((await collect(fits, [{ role: "user", content: "hi" }])).content, scripted.answer);
});

test("parallel \"auto\" takes as many sequences as fit beside the weights, up to the cap", async (t) => {
  const benchPath = await ensureModel("bench");
  const estimate = await memoryEstimator(await sharedLlama(), benchPath);
  const total = (sequences: number) => {
    const e = estimate({ contextSize: 8192, sequences });
    return e.modelBytes + e.contextBytes;
  };
  // A budget whose usable share holds three sequences of 8192 tokens but not four.
  const budget = Math.ceil(total(3) / AUTO_PARALLEL_MEMORY_SHARE) + MiB;
  assert.ok(total(4) > budget * AUTO_PARALLEL_MEMORY_SHARE, "the budget leaves no room for a fourth");
  const three = await loadTestModel(t, "bench", { parallel: "auto", contextSize: 8192, memoryBudgetBytes: budget });
  assert.equal(three.pool.size, 3);
  assert.equal(three.options.parallel, 3);
  await three.dispose();
  // Plenty of memory: the cap.
  const capped = await loadTestModel(t, "scripted", { parallel: "auto", contextSize: 1024, memoryBudgetBytes: 64 * 1024 * MiB });
  assert.equal(capped.pool.size, AUTO_PARALLEL_MAX);
  // An explicit number is taken as it is.
  const two = await loadTestModel(t, "scripted", { parallel: 2, memoryBudgetBytes: 64 * 1024 * MiB });
  assert.equal(two.pool.size, 2);
});

test("the service refuses to start a model that would not fit, with a clear error", async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "sputnik-mem-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const config = loadConfig({
    env: {},
    flags: {
      port: 0,
      dataDir,
      models: [await ensureModel("bench")],
      threads: 1,
      parallel: 4,
      contextSize: 4096,
      pullDefaultModel: false,
      logLevel: "silent",
      localEngine: { memoryBudgetBytes: 300 * MiB },
    },
  });
  await assert.rejects(startService(config), /Model bench would need about .* but the configured memory budget is 300 MiB/);
});

test("speculative decoding by input lookup keeps the output and reports its acceptance", async (t) => {
  const model = await loadTestModel(t, "scripted", { settings: { speculative: { type: "lookup", maxTokens: 4 } } });
  // The prompt quotes the reply, so looking it up in the input predicts it well.
  const quoted = `Please repeat: ${scripted.reasoning} ${scripted.answer}`;
  const result = await collect(model, [{ role: "user", content: quoted }]);
  assert.equal(result.reasoning, scripted.reasoning);
  assert.equal(result.content, scripted.answer);
  const stats = model.stats().speculative!;
  assert.ok(stats.validated > 0, `validated ${stats.validated}`);
  assert.ok(stats.acceptanceRate! > 0 && stats.acceptanceRate! <= 1);
});

test("speculative decoding with a draft model keeps the output and reports its acceptance", async (t) => {
  // The model drafting for itself. It waits for two proposals per step, so some are always checked
  // (without waiting, whether the draft is ever in time depends on which of the two is quicker).
  const draft = await ensureModel("scripted");
  const model = await loadTestModel(t, "scripted", {
    settings: { speculative: { type: "draft", model: draft, maxTokens: 4, minTokens: 2, minConfidence: 0 } },
  });
  const result = await collect(model, [{ role: "user", content: "Hello" }]);
  assert.equal(result.reasoning, scripted.reasoning);
  assert.equal(result.content, scripted.answer);
  const stats = model.stats().speculative!;
  assert.ok(stats.validated >= 5, `validated ${stats.validated}`);
  assert.ok(stats.acceptanceRate! > 0 && stats.acceptanceRate! <= 1, `acceptance ${stats.acceptanceRate}`);
});

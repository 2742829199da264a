/**
 * The benchmark model: realistic shape, loads, generates ordinary tokens, same bytes every build.
 * The ~505 MiB file is generated once into .cache/models and reused by later runs.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaLogLevel, readGgufFileInfo, type GgufFileInfo, type Llama, type Token } from "node-llama-cpp";
import { BENCH_SHAPE } from "./bench.ts";
import { buildModel, ensureModel } from "./catalog.ts";
import { TokenType } from "./tokenizer.ts";

let llama: Llama;
let file: string;
let info: GgufFileInfo;
before(async () => {
  file = await ensureModel("bench");
  info = await readGgufFileInfo(file, { readTensorInfo: true });
  llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
});

describe("bench model", () => {
  it("has the Qwen2.5-0.5B-like shape, a 151,936-token vocabulary and Q8_0 matrices", async () => {
    const m = info.metadata as unknown as Record<string, Record<string, unknown>>;
    const llamaMeta = m.llama as { block_count: number; embedding_length: number; feed_forward_length: number; attention: { head_count: number; head_count_kv: number } };
    assert.equal(llamaMeta.block_count, BENCH_SHAPE.layers);
    assert.equal(llamaMeta.embedding_length, 896);
    assert.equal(llamaMeta.feed_forward_length, 4864);
    assert.deepEqual([llamaMeta.attention.head_count, llamaMeta.attention.head_count_kv], [14, 2]);
    const tokenizer = (m.tokenizer as { ggml: { tokens: string[]; token_type: number[]; pre: string } }).ggml;
    assert.equal(tokenizer.tokens.length, 151_936);
    assert.equal(tokenizer.pre, "deepseek-r1-qwen");
    const tensors = info.fullTensorInfo ?? [];
    assert.equal(tensors.length, 1 + 24 * 9 + 1);
    for (const t of tensors) assert.equal(t.ggmlType, t.name.endsWith("norm.weight") ? 0 : 8, `${t.name} type`);
  });

  it("loads and greedily generates ordinary, valid UTF-8 tokens", async () => {
    const model = await llama.loadModel({ modelPath: file });
    const context = await model.createContext({ contextSize: 256, threads: 1 });
    try {
      assert.deepEqual([model.tokens.bos, model.tokens.eos], [151_646, 151_643]);
      const types = (info.metadata as unknown as { tokenizer: { ggml: { token_type: number[] } } }).tokenizer.ggml.token_type;
      const sequence = context.getSequence();
      const generated: Token[] = [];
      for await (const token of sequence.evaluate(model.tokenize("The quick brown fox"), { temperature: 0 })) {
        generated.push(token);
        if (generated.length === 4) break;
      }
      assert.equal(generated.length, 4);
      for (const token of generated) assert.equal(types[token], TokenType.NORMAL, `token ${token} is ordinary`);
      assert.doesNotMatch(model.detokenize(generated), /\uFFFD/);
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  it("builds the same bytes as the cached file", async () => {
    const fresh = createHash("sha256");
    for (const chunk of buildModel("bench").bytes()) fresh.update(chunk);
    const cached = createHash("sha256");
    for await (const chunk of createReadStream(file)) cached.update(chunk as Buffer);
    assert.equal(fresh.digest("hex"), cached.digest("hex"));
  });
});

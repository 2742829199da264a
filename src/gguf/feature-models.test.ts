/**
 * The feature models (FEATURE_SCRIPTS) under node-llama-cpp alone: the penalty model's rival EOS
 * and the FIM model's tokens, metadata, infill and plain-completion runs behave as their scripts say.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaChatSession, LlamaCompletion, type Llama } from "node-llama-cpp";
import { ensureModel, FEATURE_SCRIPTS } from "./catalog.ts";
import { ScriptError } from "./ngram.ts";
import { buildScriptedModel, FIM_TOKENS } from "./scripted.ts";

let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false });
});
after(async () => {
  await llama.dispose();
});

describe("scripted-penalty", () => {
  it("greedily writes its script; penalties past the rival's margin end it early", async () => {
    const model = await llama.loadModel({ modelPath: await ensureModel("scripted-penalty") });
    const context = await model.createContext({ contextSize: 512, threads: 1 });
    try {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      const answer = async (repeatPenalty: false | object) => {
        session.setChatHistory([]);
        return (await session.prompt("hi", { temperature: 0, repeatPenalty: repeatPenalty as false })).trim();
      };
      assert.equal(await answer(false), FEATURE_SCRIPTS["scripted-penalty"]!.answer);
      assert.equal(await answer({ lastTokens: 512, penalty: 1, frequencyPenalty: 1 }), "yes yes yes");
      assert.equal(await answer({ lastTokens: 512, penalty: 1, presencePenalty: 2 }), "yes yes");
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  it("refuses a rival that is not one token of the script", () => {
    assert.throws(() => buildScriptedModel("x", { reasoning: "Think first.", answer: "Then answer.", rival: { word: " nope", margin: 1 } }, "stamp"), ScriptError);
  });
});

describe("scripted-fim", () => {
  it("names its FIM tokens in the GGUF; infill gives the middle, a plain prompt its continuation", async () => {
    const model = await llama.loadModel({ modelPath: await ensureModel("scripted-fim") });
    const context = await model.createContext({ contextSize: 512, threads: 1 });
    try {
      const ggml = (model.fileInfo.metadata as any).tokenizer.ggml;
      assert.equal(ggml.tokens[ggml.fim_pre_token_id], FIM_TOKENS.prefix);
      assert.equal(ggml.tokens[ggml.fim_suf_token_id], FIM_TOKENS.suffix);
      assert.equal(ggml.tokens[ggml.fim_mid_token_id], FIM_TOKENS.middle);
      assert.equal(model.tokens.infill.prefix, ggml.fim_pre_token_id);
      const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
      assert.ok(completion.infillSupported);
      for (const [prefix, suffix] of [["def add(a, b):\n    ", "\n"], ["x = 1\n", ""], ["", "print(1)"]])
        assert.equal(await completion.generateInfillCompletion(prefix, suffix, { temperature: 0, maxTokens: 16 }), FEATURE_SCRIPTS["scripted-fim"]!.fimMiddle);
      assert.equal(await completion.generateCompletion("The quick brown", { temperature: 0, maxTokens: 16 }), " fox jumps over the lazy dog.");
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });
});

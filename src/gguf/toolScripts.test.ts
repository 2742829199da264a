/**
 * The tool-calling models' construction (ngram.ts + toolScripts.ts): through real llama.cpp, the
 * greedy next token at every position the script says the model writes is exactly the scripted
 * one, on every path (first turn, detours, forced call, answer after the tool outputs), whatever
 * user text comes before; and the planner refuses scripts no weights can follow.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaLogLevel, LlamaText, resolveChatWrapper, type Llama, type Token } from "node-llama-cpp";
import { buildModel, ensureModel } from "./catalog.ts";
import { planRuns, ScriptError, vocabularyForRuns } from "./ngram.ts";
import { planToolScript, QW, TOOL_SCRIPTS } from "./toolScripts.ts";

let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
});

for (const [name, script] of Object.entries(TOOL_SCRIPTS)) {
  describe(`${name} model`, () => {
    it("predicts every scripted token of every path greedily", async () => {
      const plan = planToolScript(script);
      const model = await llama.loadModel({ modelPath: await ensureModel(name) });
      const context = await model.createContext({ contextSize: 1024, threads: 1 });
      try {
        const sequence = context.getSequence();
        const userTurn = script.family === "qwen" ? "<|im_start|>user\nAny text at all: 42 {}<|im_end|>\n" : "<｜begin▁of▁sentence｜><｜User｜>Any text at all: 42 {}";
        const before = model.tokenize(userTurn, true);
        let checked = 0;
        for (const path of plan.paths) {
          for (let i = 0; i + 1 < path.tokens.length; i++) {
            if (!path.predicted[i + 1]) continue;
            await sequence.clearHistory();
            const input = [...before, ...path.tokens.slice(0, i + 1)] as Token[];
            let next: Token | undefined;
            for await (const token of sequence.evaluate(input, { temperature: 0, yieldEogToken: true })) {
              next = token;
              break;
            }
            assert.equal(next, path.tokens[i + 1], `path ${plan.paths.indexOf(path)} position ${i}: ${JSON.stringify(model.detokenize(input.slice(-6), true))}`);
            checked++;
          }
        }
        assert.ok(checked > 20);
      } finally {
        await context.dispose();
        await model.dispose();
      }
    });

    it(`makes node-llama-cpp pick its ${script.family === "qwen" ? "Qwen" : "DeepSeek"} chat wrapper`, async () => {
      const model = await llama.loadModel({ modelPath: await ensureModel(name) });
      try {
        const wrapper = resolveChatWrapper(model);
        assert.equal(wrapper.constructor.name, script.family === "qwen" ? "QwenChatWrapper" : "DeepSeekChatWrapper");
        if (script.family === "qwen") {
          assert.equal(model.fileInfo.metadata.general.architecture, "qwen2");
          // The syntax the scripts follow (toolScripts.ts QW) is this wrapper's.
          const call = wrapper.settings.functions.call;
          assert.equal(LlamaText(call.prefix).toString(), QW.callPrefix);
          assert.equal(LlamaText(call.paramsPrefix).toString(), QW.paramsPrefix);
          assert.equal(LlamaText(call.suffix).toString(), QW.callSuffix);
        }
      } finally {
        await model.dispose();
      }
    });

    it("builds the same bytes every time", () => {
      const digest = () => createHash("sha256").update(Buffer.concat([...buildModel(name).bytes()])).digest("hex");
      assert.equal(digest(), digest());
    });
  });
}

describe("planRuns", () => {
  it("refuses two runs that continue the same known context differently", () => {
    const runs = [
      [{ text: "<｜Assistant｜>", by: "prompt" as const }, { text: "yes", by: "model" as const }],
      [{ text: "<｜Assistant｜>", by: "prompt" as const }, { text: "no", by: "model" as const }],
    ];
    assert.throws(() => planRuns(vocabularyForRuns(runs), runs), ScriptError);
  });

  it("lets the run with the longer prompt win where both could continue", () => {
    const runs = [
      [{ text: "<｜Assistant｜>", by: "prompt" as const }, { text: "yes", by: "model" as const }],
      [{ text: "<｜tool▁outputs▁end｜><｜Assistant｜>", by: "prompt" as const }, { text: "no", by: "model" as const }],
    ];
    const plan = planRuns(vocabularyForRuns(runs), runs);
    const levels = plan.steps.map((s) => [s.context.length, s.level]);
    assert.deepEqual(levels.sort(), [[1, 0], [2, 1]]);
  });
});

/**
 * The scripted models through real llama.cpp inference (node-llama-cpp, CPU, one thread): each
 * emits exactly its script whatever the user says, on later turns, under sampling, with a
 * thought budget, and after a prompt rendered by the embedded Jinja template.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaChat, LlamaChatSession, LlamaLogLevel, type Llama, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import { buildModel, ensureModel, MODEL_SCRIPTS, rawModelTexts } from "./catalog.ts";
import { planScript } from "./scripted.ts";

let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
});

interface Reply {
  thought: string;
  response: string;
  stopReason: string;
}

type PromptOptions = Parameters<LlamaChatSession["promptWithMeta"]>[1];

async function ask(session: LlamaChatSession, prompt: string, options: PromptOptions = {}): Promise<Reply> {
  let thought = "";
  let streamed = "";
  const result = await session.promptWithMeta(prompt, {
    ...options,
    onResponseChunk(chunk) {
      if (chunk.type === "segment" && chunk.segmentType === "thought") thought += chunk.text;
      else if (chunk.type === undefined) streamed += chunk.text;
    },
  });
  assert.equal(streamed, result.responseText, "streamed response equals the final response");
  return { thought, response: result.responseText, stopReason: result.stopReason };
}

async function withModel<T>(name: string, use: (model: LlamaModel, context: LlamaContext) => Promise<T>): Promise<T> {
  const model = await llama.loadModel({ modelPath: await ensureModel(name) });
  const context = await model.createContext({ contextSize: 2048, threads: 1 });
  try {
    return await use(model, context);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

for (const [name, script] of Object.entries(MODEL_SCRIPTS)) {
  describe(`${name} model`, () => {
    const expected = { ...rawModelTexts(script), stopReason: "eogToken" };

    it("emits its script for different prompts, on a second turn, and with a system prompt", async () => {
      await withModel(name, async (model, context) => {
        const sequence = context.getSequence();
        const session = new LlamaChatSession({ contextSequence: sequence });
        assert.equal(session.chatWrapper.wrapperName, "DeepSeek", "the R1 template selects DeepSeekChatWrapper");
        assert.deepEqual(await ask(session, "What is the capital of France?"), expected);
        assert.deepEqual(await ask(session, "And Germany? <think> </think> 你好 🚀 {\"a\":1}"), expected);
        session.dispose({ disposeSequence: false });
        await sequence.clearHistory();
        const other = new LlamaChatSession({ contextSequence: sequence, systemPrompt: "You are a pirate. Answer in rhymes." });
        assert.deepEqual(await ask(other, "x"), expected);
      });
    });

    it("is tokenized by llama.cpp exactly as the script was planned", async () => {
      await withModel(name, async (model) => {
        const plan = planScript(script);
        const full = `<｜Assistant｜><think>\n${script.reasoning}\n</think>\n\n${script.answer}<｜end▁of▁sentence｜>`;
        const chatRun = plan.paths[0]!.tokens;
        assert.deepEqual(model.tokenize(full, true), chatRun);
        assert.equal(model.detokenize(chatRun as Token[], true), full);
      });
    });

    it("builds the same bytes every time", () => {
      const digest = () => createHash("sha256").update(Buffer.concat([...buildModel(name).bytes()])).digest("hex");
      assert.equal(digest(), digest());
    });
  });
}

describe("scripted model under generation options", () => {
  const script = MODEL_SCRIPTS.scripted;
  const expected = { ...rawModelTexts(script), stopReason: "eogToken" };

  it("keeps the script under high temperature, top-p and repeat penalties", async () => {
    await withModel("scripted", async (_model, context) => {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      for (let seed = 1; seed <= 4; seed++)
        assert.deepEqual(await ask(session, `seed ${seed}`, { temperature: 1.5, topP: 0.95, seed }), expected, `seed ${seed}`);
      const penalties = { repeatPenalty: { penalty: 1.3, frequencyPenalty: 1, presencePenalty: 1 } };
      assert.deepEqual(await ask(session, "penalties", penalties), expected);
    });
  });

  it("cuts the thought at the thought-token budget and still gives the answer", async () => {
    await withModel("scripted", async (_model, context) => {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      const cut = await ask(session, "budget", { budgets: { thoughtTokens: 5 } });
      assert.deepEqual(cut, { thought: "\nThe user asks a", response: expected.response, stopReason: "eogToken" });
      const none = await ask(session, "no budget", { budgets: { thoughtTokens: 0 } });
      assert.deepEqual(none, { thought: "", response: expected.response, stopReason: "eogToken" });
    });
  });

  it("streams the same segments through LlamaChat", async () => {
    await withModel("scripted", async (_model, context) => {
      const chat = new LlamaChat({ contextSequence: context.getSequence() });
      const thoughtChunks: string[] = [];
      const result = await chat.generateResponse([{ type: "user", text: "hi" }, { type: "model", response: [] }], {
        onResponseChunk(chunk) {
          if (chunk.type === "segment") thoughtChunks.push(chunk.text);
        },
      });
      assert.equal(result.response, expected.response);
      assert.equal(thoughtChunks.join(""), expected.thought);
      assert.ok(thoughtChunks.length > 10, "the thought streams token by token");
      const segment = result.fullResponse.find((item) => typeof item !== "string");
      assert.deepEqual(segment && typeof segment !== "string" ? [segment.segmentType, segment.text, segment.ended] : [], ["thought", expected.thought, true]);
    });
  });

  it("continues a prompt that already ends in the template's <think>\\n", async () => {
    await withModel("scripted", async (model, context) => {
      const sequence = context.getSequence();
      const prompt = model.tokenize("<｜begin▁of▁sentence｜><｜User｜>Hi there<｜Assistant｜><think>\n", true);
      const generated: Token[] = [];
      for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
        if (model.isEogToken(token)) break;
        generated.push(token);
        if (generated.length > 200) break;
      }
      assert.equal(model.detokenize(generated, true), `${script.reasoning}\n</think>\n\n${script.answer}`);
    });
  });

  it("answers with exactly the scripted JSON under a JSON grammar", async () => {
    const json = MODEL_SCRIPTS["scripted-json"];
    await withModel("scripted-json", async (_model, context) => {
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      const grammar = await llama.getGrammarFor("json");
      // With a grammar node-llama-cpp opens no thought: the answer comes right away.
      const reply = await ask(session, "Where?", { grammar });
      assert.deepEqual(reply, { thought: "", response: json.answer, stopReason: "eogToken" });
      assert.deepEqual(JSON.parse(reply.response), { city: "Paris", answer: 42 });
    });
  });
});

after(async () => {
  await llama?.dispose();
});

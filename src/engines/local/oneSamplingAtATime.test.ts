import assert from "node:assert/strict";
import { test } from "node:test";
import { getLlama, type ControlledEvaluateInputItem, type LlamaContextSequence, type Token } from "node-llama-cpp";
import { ensureModel } from "../../gguf/catalog.ts";
import { oneSamplingAtATime } from "./oneSamplingAtATime.ts";

// About 1 in 200–500 such batches swapped before the fix: 4000 rounds (about 15 s) miss it with a chance under 1 in 1000.
const ROUNDS = 4000;

// The race needs two libuv threads sampling at once; `node --test` runs this file with the default four.
test("two sequences sampled from one batch never get each other's token", { timeout: 180_000 }, async () => {
  assert.ok(Number(process.env.UV_THREADPOOL_SIZE ?? 4) > 1, "libuv has more than one thread, as the race needs");
  const llama = await getLlama({ gpu: false });
  const model = await llama.loadModel({ modelPath: await ensureModel("scripted") });
  const context = await model.createContext({ sequences: 2, contextSize: 2048, threads: 1, batchSize: 512 });
  oneSamplingAtATime(context);
  try {
    const first = context.getSequence();
    const second = context.getSequence();
    const turn = (text: string) => model.tokenize(`<｜begin▁of▁sentence｜><｜User｜>${text}<｜Assistant｜>`, true);
    // A long prompt on the lower sequence id and a short one on the higher: llama.cpp computes the
    // short one's output first and must swap the rows back. Their next tokens differ ("\n" after
    // "<think>", "<think>" after the turn), so a swap shows.
    const long = [...turn("Tell me, in as much detail as you can, how the first crewed landing on the Moon was planned, who flew it, and what they brought back. ".repeat(3)), ...model.tokenize("<think>", true)];
    const short = turn("Hello?");
    const next = async (sequence: LlamaContextSequence, tokens: Token[]) => {
      const input = tokens.map((t, i): ControlledEvaluateInputItem => (i === tokens.length - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
      const out = await sequence.controlledEvaluate(input);
      await sequence.clearHistory();
      return out[tokens.length - 1]?.next?.token;
    };
    const expected = [await next(first, long), await next(second, short)];
    assert.notEqual(expected[0], expected[1], "the two prompts continue differently");
    let swapped = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // Started in one tick: one batch.
      const got = await Promise.all([next(first, long), next(second, short)]);
      if (got[0] !== expected[0] || got[1] !== expected[1]) swapped++;
    }
    assert.equal(swapped, 0, `${swapped} of ${ROUNDS} batches gave a sequence the other's token`);
  } finally {
    await context.dispose();
    await model.dispose();
  }
});

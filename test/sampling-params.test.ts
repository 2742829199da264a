/**
 * Sampling parameters and logprobs on /v1/chat/completions, against real llama.cpp on the
 * generated `scripted-penalty` model: greedy decoding writes "yes yes yes yes yes yes", and at
 * every " yes" EOS is the runner-up exactly 1.5 logits behind (src/gguf/scripts.ts). So:
 *   - frequency_penalty 1 ends the answer once " yes" has been generated twice (100 − 2 < 98.5),
 *   - presence_penalty 2 ends it at the first repeat,
 *   - logit_bias −2 on " yes" (or +2 on EOS) ends it at once,
 * and each test fails if the parameter is dropped (the answer is then the full script).
 * Logprobs are checked against the closed form (−ln(1 + e^−2.5)) and against llama.cpp's own
 * distribution, computed independently with `evaluateWithMetadata` on the same tokens.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getLlama, type Token } from "node-llama-cpp";
import OpenAI from "openai";
import type { LocalEngine } from "../src/engines/local/localEngine.ts";
import { ensureModel, FEATURE_SCRIPTS, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startTestService, type TestService } from "./support/service.ts";

type Engine = LocalEngine;

const FULL = FEATURE_SCRIPTS["scripted-penalty"]!.answer; // "yes yes yes yes yes yes"
const REASONING = FEATURE_SCRIPTS["scripted-penalty"]!.reasoning;
/** ln P(" yes") when EOS is 1.5 logits behind and every other token 100 behind. */
const YES_LOGPROB = -Math.log(1 + Math.exp(-1.5));
const EOS_LOGPROB = -1.5 + YES_LOGPROB;

let service: TestService;
let client: OpenAI;
let yesId: number;
let eosId: number;

before(async () => {
  service = await startTestService({ models: ["scripted-penalty", "scripted"] });
  client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey!, maxRetries: 0 });
  const model = (service.router.engineFor("scripted-penalty") as Engine).get("scripted-penalty")!.model;
  yesId = model.tokenize(" yes")[0]!;
  eosId = model.tokens.eos!;
});
after(() => service.stop());

const messages = [{ role: "user" as const, content: "Say yes." }];

async function ask(extra: Record<string, unknown>) {
  const completion = await client.chat.completions.create({ model: "scripted-penalty", messages, temperature: 0, ...extra } as never);
  return completion as unknown as OpenAI.Chat.Completions.ChatCompletion;
}

async function post(body: object) {
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...service.localAuth },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as any };
}

describe("penalties and logit_bias are applied", () => {
  test("without them the greedy answer is the whole script", async () => {
    const completion = await ask({});
    assert.equal(completion.choices[0]!.message.content, FULL);
    assert.equal(completion.choices[0]!.finish_reason, "stop");
  });

  test("frequency_penalty: EOS overtakes ' yes' once its count times the penalty passes the margin", async () => {
    // 1: counts 0, 1 keep ' yes' ahead (100, 99 > 98.5), count 2 does not (98).
    assert.equal((await ask({ frequency_penalty: 1 })).choices[0]!.message.content, "yes yes yes");
    // 0.7: 97.9 < 98.5 only at count 3.
    assert.equal((await ask({ frequency_penalty: 0.7 })).choices[0]!.message.content, "yes yes yes yes");
    // Negative values encourage repeats, which the script already does.
    assert.equal((await ask({ frequency_penalty: -1 })).choices[0]!.message.content, FULL);
  });

  test("presence_penalty: above the margin the first repeat loses to EOS, below it nothing changes", async () => {
    assert.equal((await ask({ presence_penalty: 2 })).choices[0]!.message.content, "yes yes");
    assert.equal((await ask({ presence_penalty: 1 })).choices[0]!.message.content, FULL);
  });

  test("logit_bias on ' yes' and on EOS, streamed too", async () => {
    assert.equal((await ask({ logit_bias: { [yesId]: -2 } })).choices[0]!.message.content, "yes");
    assert.equal((await ask({ logit_bias: { [yesId]: -100 } })).choices[0]!.message.content, "yes");
    assert.equal((await ask({ logit_bias: { [eosId]: 2 } })).choices[0]!.message.content, "yes");
    assert.equal((await ask({ logit_bias: { [yesId]: -1 } })).choices[0]!.message.content, FULL);
    const stream = await client.chat.completions.create({ model: "scripted-penalty", messages, temperature: 0, stream: true, logit_bias: { [yesId]: -2 } });
    let content = "";
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(content, "yes");
  });

  test("the scripted model is unmoved by the same parameters (its margin is 100)", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages,
      frequency_penalty: 2,
      presence_penalty: 2,
      logit_bias: { "0": 5 },
    });
    assert.equal(completion.choices[0]!.message.content, MODEL_SCRIPTS.scripted!.answer);
  });
});

describe("logprobs", () => {
  test("non-streamed: OpenAI's shape, reasoning apart, values as llama.cpp computes them", async () => {
    const completion = await ask({ logprobs: true, top_logprobs: 2 });
    const choice = completion.choices[0]! as any;
    assert.equal(choice.message.content, FULL);
    const content = choice.logprobs.content as Array<{ token: string; logprob: number; bytes: number[]; top_logprobs: any[] }>;
    const reasoning = choice.logprobs.reasoning_content as typeof content;
    // The tokens spell the texts exactly (whitespace-only tokens around them are trimmed like the text).
    assert.equal(content.map((t) => t.token).join(""), FULL);
    assert.equal(reasoning.map((t) => t.token).join(""), REASONING);
    for (const t of [...content, ...reasoning]) {
      assert.deepEqual(t.bytes, [...Buffer.from(t.token, "utf8")]);
      assert.equal(t.top_logprobs.length, 2);
      assert.equal(t.top_logprobs[0].token, t.token, "greedy: the sampled token is the most likely");
      assert.equal(t.top_logprobs[0].logprob, t.logprob);
      assert.ok(t.top_logprobs[1].logprob <= t.logprob);
      assert.ok(Math.exp(t.top_logprobs[0].logprob) + Math.exp(t.top_logprobs[1].logprob) <= 1 + 1e-6);
    }
    assert.equal(content[0]!.token, "yes");
    assert.ok(Math.abs(content[0]!.logprob) < 1e-6, "a scripted token with a 100-logit margin is certain");
    for (const t of content.slice(1)) {
      assert.equal(t.token, " yes");
      assert.ok(Math.abs(t.logprob - YES_LOGPROB) < 1e-4, `${t.logprob} ≈ ${YES_LOGPROB}`);
      assert.equal(t.top_logprobs[1].token, "<｜end▁of▁sentence｜>");
      assert.ok(Math.abs(t.top_logprobs[1].logprob - EOS_LOGPROB) < 1e-4);
    }
  });

  test("match the distribution llama.cpp gives for the same tokens, independently evaluated", async () => {
    const completion = await ask({ logprobs: true, top_logprobs: 3, frequency_penalty: 0 });
    const content = (completion.choices[0] as any).logprobs.content as Array<{ token: string; logprob: number; top_logprobs: Array<{ token: string; logprob: number }> }>;
    const local = (service.router.engineFor("scripted-penalty") as Engine).get("scripted-penalty")!;
    const prompt = local.promptTokens({ messages });
    const llama = await getLlama({ gpu: false });
    const model = await llama.loadModel({ modelPath: await ensureModel("scripted-penalty") });
    const context = await model.createContext({ contextSize: 512, threads: 1 });
    try {
      const sequence = context.getSequence();
      const seen: Array<{ token: string; logprob: number; top: Array<[string, number]> }> = [];
      const iterator = sequence.evaluateWithMetadata(prompt, { probabilities: true }, { temperature: 0, yieldEogToken: true });
      for await (const step of iterator) {
        if (model.isEogToken(step.token)) break;
        const top = [...step.probabilities.entries()].slice(0, 3).map(([t, p]) => [model.detokenize([t as Token], true), Math.log(p)] as [string, number]);
        seen.push({ token: model.detokenize([step.token], true), logprob: Math.log(step.probabilities.get(step.token)!), top });
      }
      // The evaluation also yields the thought's tokens; the answer's are the last ones.
      const answer = seen.slice(-content.length);
      assert.deepEqual(answer.map((s) => s.token), content.map((c) => c.token));
      content.forEach((c, i) => {
        assert.ok(Math.abs(c.logprob - answer[i]!.logprob) < 1e-9, `token ${i}: ${c.logprob} vs ${answer[i]!.logprob}`);
        assert.deepEqual(c.top_logprobs.slice(0, 2).map((a) => a.token), answer[i]!.top.slice(0, 2).map(([t]) => t));
      });
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  test("streamed: per-chunk logprobs, reasoning and content apart, same values as the JSON answer", async () => {
    const whole = (await ask({ logprobs: true, top_logprobs: 1 })).choices[0] as any;
    const stream = await client.chat.completions.create({ model: "scripted-penalty", messages, temperature: 0, stream: true, logprobs: true, top_logprobs: 1 });
    const content: any[] = [];
    const reasoning: any[] = [];
    let text = "";
    for await (const chunk of stream) {
      const choice = chunk.choices[0] as any;
      if (!choice) continue;
      text += choice.delta?.content ?? "";
      if (choice.logprobs?.content) content.push(...choice.logprobs.content);
      if (choice.logprobs?.reasoning_content) reasoning.push(...choice.logprobs.reasoning_content);
      // A chunk's content logprobs spell that chunk's content.
      if (choice.logprobs?.content?.length && choice.delta?.content) assert.equal(choice.logprobs.content.map((t: any) => t.token).join(""), choice.delta.content);
    }
    assert.equal(text, FULL);
    assert.deepEqual(content, whole.logprobs.content);
    assert.deepEqual(reasoning, whole.logprobs.reasoning_content);
  });

  test("logprobs: true with no top_logprobs gives empty alternatives; absent logprobs give null", async () => {
    const withLogprobs = (await ask({ logprobs: true })).choices[0] as any;
    assert.ok(withLogprobs.logprobs.content.length > 0);
    for (const t of withLogprobs.logprobs.content) assert.deepEqual(t.top_logprobs, []);
    assert.equal(((await ask({})).choices[0] as any).logprobs, null);
  });
});

describe("clear 400s naming the parameter", () => {
  const cases: Array<[string, object, string]> = [
    ["a token id the model lacks", { logit_bias: { "99999": 1 } }, "logit_bias"],
    ["a bias out of range", { logit_bias: { "5": 101 } }, "logit_bias.5"],
    ["a key that is not a token id", { logit_bias: { yes: 1 } }, "logit_bias.yes"],
    ["top_logprobs without logprobs", { top_logprobs: 2 }, "top_logprobs"],
    ["top_logprobs above 20", { logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    ["a penalty out of range", { frequency_penalty: 2.5 }, "frequency_penalty"],
    ["n above 1", { n: 2 }, "n"],
  ];
  for (const [name, extra, param] of cases) {
    test(name, async () => {
      const { status, body } = await post({ model: "scripted-penalty", messages, ...extra });
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal(body.error.param, param);
      assert.equal(body.error.type, "invalid_request_error");
    });
  }

  test("more than 300 logit_bias entries", async () => {
    const bias = Object.fromEntries(Array.from({ length: 301 }, (_, i) => [String(i), 1]));
    const { status, body } = await post({ model: "scripted-penalty", messages, logit_bias: bias });
    assert.equal(status, 400);
    assert.equal(body.error.param, "logit_bias");
    assert.match(body.error.message, /at most 300/);
  });

  test("an image part for a text-only model names the part's type", async () => {
    const { status, body } = await post({
      model: "scripted",
      messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }],
    });
    assert.equal(status, 400);
    assert.equal(body.error.param, "messages[0].content[1].type");
    assert.match(body.error.message, /image_url/);
  });

  test("text parts still join into one message", async () => {
    const { status, body } = await post({ model: "scripted", messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }] });
    assert.equal(status, 200);
    assert.equal(body.choices[0].message.content, MODEL_SCRIPTS.scripted!.answer);
  });
});

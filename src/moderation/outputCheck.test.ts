import assert from "node:assert/strict";
import { test } from "node:test";
import { emptyUsage, type EngineEvent, type TokenLogprob } from "../engines/types.ts";
import { checkOutput } from "./outputCheck.ts";
import type { ModerationChannel } from "./types.ts";

/** Streams `text` on `channel` in small pieces, as an engine does. */
function pieces(channel: "reasoning" | "content", text: string, size = 3): EngineEvent[] {
  const out: EngineEvent[] = [];
  for (let i = 0; i < text.length; i += size) out.push({ type: channel, text: text.slice(i, i + size) });
  return out;
}

async function* from(events: EngineEvent[], stopped: { at: number | null }): AsyncGenerator<EngineEvent> {
  for (let i = 0; i < events.length; i++) {
    // An engine that was stopped ends with its usage and an `abort`.
    if (stopped.at !== null) break;
    yield events[i]!;
  }
  yield { type: "usage", usage: { ...emptyUsage(), completion_tokens: 7 } };
  yield { type: "done", finishReason: stopped.at !== null ? "abort" : "stop" };
}

async function run(events: EngineEvent[], blocked: string, checks: (c: ModerationChannel) => boolean = () => true) {
  const stopped = { at: null as number | null };
  const judged: Array<{ channel: ModerationChannel; window: string; offset: number }> = [];
  const out: EngineEvent[] = [];
  for await (const event of checkOutput(from(events, stopped), {
    checks,
    stop: () => (stopped.at = out.length),
    judge: async (channel, window, offset) => {
      judged.push({ channel, window, offset });
      return window.includes(blocked) ? "withhold" : "pass";
    },
  })) {
    out.push(event);
  }
  const text = (channel: string) => out.filter((e) => e.type === channel).map((e) => (e as { text: string }).text).join("");
  return { out, judged, stopped: stopped.at !== null, reasoning: text("reasoning"), content: text("content"), done: out.at(-1) };
}

const REASONING = "The user asks a question. I will answer the question briefly and clearly.";
const ANSWER = "Hello! I am the scripted test model. The answer is 42.";
const stream = () => [...pieces("reasoning", REASONING), ...pieces("content", ANSWER)];

test("windows that pass are released unchanged, each checked once, in order", async () => {
  const r = await run(stream(), "never");
  assert.equal(r.reasoning, REASONING);
  assert.equal(r.content, ANSWER);
  assert.deepEqual(
    r.judged.map((j) => [j.channel, j.window, j.offset]),
    [
      ["reasoning", "The user asks a question.", 0],
      ["reasoning", " I will answer the question briefly and clearly.", 25],
      ["content", "Hello!", 0],
      ["content", " I am the scripted test model.", 6],
      ["content", " The answer is 42.", 36],
    ],
  );
  assert.deepEqual(r.done, { type: "done", finishReason: "stop" });
  assert.equal(r.stopped, false);
});

test("a withhold after text was shown keeps what was shown, drops the rest, stops the engine, ends content_filter", async () => {
  const r = await run(stream(), "42");
  assert.equal(r.reasoning, REASONING);
  assert.equal(r.content, "Hello! I am the scripted test model.");
  assert.equal(r.stopped, true);
  assert.ok(r.out.some((e) => e.type === "usage"), "the usage still goes through (billing)");
  assert.deepEqual(r.done, { type: "done", finishReason: "content_filter" });
});

test("a withhold on the first window shows nothing at all", async () => {
  const r = await run(stream(), "asks");
  assert.equal(r.reasoning, "");
  assert.equal(r.content, "");
  assert.deepEqual(r.done, { type: "done", finishReason: "content_filter" });
});

test("an unchecked channel passes straight through; the checked one is still windowed", async () => {
  const r = await run(stream(), "question", (c) => c === "content");
  assert.equal(r.reasoning, REASONING, "reasoning is not checked: the word in it does not trip");
  assert.ok(r.judged.every((j) => j.channel === "content"));
  assert.equal(r.content, ANSWER);
});

test("logprobs are released with their text, and never for withheld text", async () => {
  const token = (t: string): TokenLogprob => ({ token: t, logprob: -0.1, bytes: [...Buffer.from(t)], top: [] });
  const tokens = ["Hello", "!", " The", " answer", " is", " 42", "."];
  const events: EngineEvent[] = tokens.flatMap((t): EngineEvent[] => [{ type: "logprobs", channel: "content", tokens: [token(t)] }, { type: "content", text: t }]);
  const passed = await run(events, "never");
  assert.deepEqual(passed.out.filter((e) => e.type === "logprobs").flatMap((e) => (e as { tokens: TokenLogprob[] }).tokens.map((t) => t.token)), tokens);
  const withheld = await run(events, "42");
  assert.deepEqual(withheld.out.filter((e) => e.type === "logprobs").flatMap((e) => (e as { tokens: TokenLogprob[] }).tokens.map((t) => t.token)), ["Hello", "!"]);
  assert.equal(withheld.content, "Hello!");
});

test("tool calls pass after the text before them; a stream that ends without done still releases what passes", async () => {
  const events: EngineEvent[] = [...pieces("content", "Let me look"), { type: "tool_call", index: 0, id: "c1", name: "f" }, { type: "tool_call_arguments", index: 0, text: "{}" }];
  const out: EngineEvent[] = [];
  async function* noDone() {
    yield* events;
  }
  for await (const e of checkOutput(noDone(), { checks: () => true, stop: () => undefined, judge: async () => "pass" })) out.push(e);
  assert.deepEqual(out.map((e) => e.type), ["content", "tool_call", "tool_call_arguments"]);
  assert.equal((out[0] as { text: string }).text, "Let me look");
});

test("an engine that reports its stop as an error (a cancelled upstream) still ends cleanly with content_filter", async () => {
  let stopped = false;
  async function* upstream(): AsyncGenerator<EngineEvent> {
    yield { type: "content", text: "Fine. The answer is 42. And" };
    if (stopped) throw new Error("The request was cancelled");
    yield { type: "done", finishReason: "stop" };
  }
  const out: EngineEvent[] = [];
  for await (const e of checkOutput(upstream(), {
    checks: () => true,
    stop: () => (stopped = true),
    judge: async (_c, window) => (window.includes("42") ? "withhold" : "pass"),
  })) {
    out.push(e);
  }
  assert.deepEqual(out, [
    { type: "content", text: "Fine." },
    { type: "done", finishReason: "content_filter" },
  ]);
});

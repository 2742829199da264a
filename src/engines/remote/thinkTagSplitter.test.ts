import assert from "node:assert/strict";
import { test } from "node:test";
import { ThinkTagSplitter } from "./thinkTagSplitter.ts";

function split(chunks: string[], options?: { startsInThink?: boolean }) {
  const out = { reasoning: "", content: "" };
  const splitter = new ThinkTagSplitter((kind, text) => (out[kind] += text), options);
  for (const chunk of chunks) splitter.push(chunk);
  splitter.flush();
  return out;
}

test("splits reasoning out of inline <think> tags", () => {
  assert.deepEqual(split(["<think>plan</think>answer"]), { reasoning: "plan", content: "answer" });
});

test("handles tags split across chunks at every position", () => {
  const text = "<think>step one, step two</think>\n\nThe answer.";
  for (let a = 1; a < text.length; a++) {
    for (const b of [a + 1, a + 3, a + 9]) {
      if (b >= text.length) continue;
      const result = split([text.slice(0, a), text.slice(a, b), text.slice(b)]);
      assert.deepEqual(result, { reasoning: "step one, step two", content: "\n\nThe answer." }, `cut at ${a},${b}`);
    }
  }
});

test("a template that pre-fills <think> starts in reasoning", () => {
  assert.deepEqual(split(["thinking…</th", "ink>done"], { startsInThink: true }), { reasoning: "thinking…", content: "done" });
});

test("a literal <think> later in an answer stays in the answer", () => {
  const result = split(["Use the ", "<think> tag like <think>this</think>"]);
  assert.equal(result.reasoning, "");
  assert.equal(result.content, "Use the <think> tag like <think>this</think>");
});

test("text without tags is all content, a lone '<' is not held forever", () => {
  assert.deepEqual(split(["a < b", " and c <"]), { reasoning: "", content: "a < b and c <" });
});

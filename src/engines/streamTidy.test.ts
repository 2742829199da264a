import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamTidy } from "./streamTidy.ts";

function tidy(pieces: Array<["reasoning" | "content", string]>) {
  const out = { reasoning: [] as string[], content: [] as string[] };
  const t = new StreamTidy((kind, text) => out[kind].push(text));
  for (const [kind, text] of pieces) t.push(kind, text);
  return { reasoning: out.reasoning.join(""), content: out.content.join(""), emitted: out };
}

test("trims blank lines around reasoning and answer", () => {
  const r = tidy([
    ["reasoning", "\n"],
    ["reasoning", "Let me think.\n"],
    ["reasoning", "Done.\n\n"],
    ["content", "\n\n"],
    ["content", "Answer "],
    ["content", "here.\n"],
  ]);
  assert.equal(r.reasoning, "Let me think.\nDone.");
  assert.equal(r.content, "Answer here.");
});

test("inner whitespace survives even when it arrives alone", () => {
  const r = tidy([
    ["content", "a"],
    ["content", " "],
    ["content", "\n"],
    ["content", "b"],
  ]);
  assert.equal(r.content, "a \nb");
  assert.ok(r.emitted.content.every((piece) => piece.length > 0));
});

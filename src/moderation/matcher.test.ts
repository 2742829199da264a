import assert from "node:assert/strict";
import { test } from "node:test";
import { MATCH_TIME_LIMIT_MS, TextMatcher } from "./matcher.ts";

test("blocked words match whole words, case-insensitively, after NFKC folding", () => {
  const m = new TextMatcher({ words: ["42", "Tiananmen Square"], patterns: [], allow: [] });
  assert.deepEqual(m.match("The answer is 42."), { source: "words", matched: "42" });
  assert.equal(m.match("The answer is 420."), null, "not inside another number");
  assert.equal(m.match("x42y"), null);
  assert.equal(m.match("TIANANMEN  square")?.matched, "TIANANMEN  square", "any white space between the words");
  assert.equal(m.match("The answer is ４２.")?.source, "words", "full-width digits fold to 42");
});

test("words in scripts without spaces match anywhere; allowed phrases exempt a hit inside them", () => {
  const cjk = new TextMatcher({ words: ["天安门"], patterns: [], allow: [] });
  assert.equal(cjk.match("我想了解天安门事件")?.matched, "天安门");
  const m = new TextMatcher({ words: ["kill"], patterns: [], allow: ["kill the process"] });
  assert.equal(m.match("How do I kill the process?"), null);
  assert.equal(m.match("kill the process, then kill him")?.matched, "kill", "a later hit outside the phrase still counts");
});

test("patterns match outside allowed phrases; a pattern that runs out of time counts as a hit", () => {
  const m = new TextMatcher({ words: [], patterns: ["\\bsk-[a-z0-9]{8,}"], allow: ["sk-example1234"] });
  assert.equal(m.match("my key is sk-example1234"), null);
  assert.equal(m.match("my key is sk-abcdef123456")?.matched, "sk-abcdef123456");
  // Quadratic-per-start (cubic in all) on 400 spaces: far beyond the limit, yet allowed by the static check.
  const slow = new TextMatcher({ words: [], patterns: ["\\s*\\s*\\s*x"], allow: [] });
  const started = performance.now();
  const hit = slow.match(" ".repeat(400));
  assert.equal(hit?.source, "patterns");
  assert.match(hit!.matched, /ran past/);
  assert.ok(performance.now() - started < MATCH_TIME_LIMIT_MS * 20, "bounded by the time limit");
  assert.equal(slow.match("just x")?.matched, " x", "and matches as usual where it is fast");
});

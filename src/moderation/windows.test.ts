import assert from "node:assert/strict";
import { test } from "node:test";
import { splitWindows, WINDOW_MAX_CHARS, windowLength } from "./windows.ts";

test("a window ends after a sentence end followed by white space, or a line break", () => {
  const text = "Hello! I am the scripted test model. The answer is 42.";
  assert.deepEqual(splitWindows(text), ["Hello!", " I am the scripted test model.", " The answer is 42."]);
  assert.deepEqual(splitWindows("one\ntwo"), ["one\n", "two"]);
  assert.deepEqual(splitWindows('He said "go." Then left.'), ['He said "go."', " Then left."]);
  assert.deepEqual(splitWindows("Pi is 3.14 today. Yes"), ["Pi is 3.14 today.", " Yes"]);
});

test("on a stream, a window is complete only once the next character shows the sentence ended", () => {
  assert.equal(windowLength("The answer is 4", false), 0);
  assert.equal(windowLength("The answer is 4.", false), 0, "4. could be 4.2");
  assert.equal(windowLength("The answer is 4.2", false), 0);
  assert.equal(windowLength("The answer is 4. Next", false), 16);
  assert.equal(windowLength("The answer is 4.", true), 16, "the end of the stream ends it");
  assert.equal(windowLength("", true), 0);
});

test("CJK sentence ends need no space; run-on text is cut at a space, never inside a surrogate pair", () => {
  assert.deepEqual(splitWindows("你好。世界！好"), ["你好。", "世界！", "好"]);
  const runOn = "word ".repeat(200);
  const first = windowLength(runOn, false);
  assert.ok(first <= WINDOW_MAX_CHARS && first > WINDOW_MAX_CHARS / 2);
  assert.equal(runOn.slice(0, first).endsWith(" "), true, "cut after a space: words stay whole");
  const emoji = "x".repeat(WINDOW_MAX_CHARS - 1) + "😀" + "y";
  const cut = windowLength(emoji, false);
  assert.equal(cut, WINDOW_MAX_CHARS - 1);
  assert.equal(splitWindows(emoji).join(""), emoji);
});

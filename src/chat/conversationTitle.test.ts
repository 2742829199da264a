import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_TITLE_LENGTH, titleFromExchange } from "./conversationTitle.ts";

test("a title is the question's first sentence without markdown", () => {
  assert.equal(titleFromExchange("How do I **reverse** a list in Python? I tried [this](http://x.y).", "..."), "How do I reverse a list in Python?");
  assert.equal(titleFromExchange("## Explain `async` functions.\nMore details here", ""), "Explain async functions");
});

test("long questions are cut at a word boundary", () => {
  const title = titleFromExchange("word ".repeat(40), "");
  assert.ok(Array.from(title).length <= MAX_TITLE_LENGTH, title);
  assert.match(title, /^word( word)*…$/);
});

test("the answer names the conversation when the question has no words, else a fallback", () => {
  assert.equal(titleFromExchange("```\nx = 1\n```", "This assigns one to x. Then more."), "This assigns one to x");
  assert.equal(titleFromExchange("???", "!!!"), "New chat");
  assert.equal(titleFromExchange("你好，世界。今天好吗", ""), "你好，世界");
});

test("a title costs milliseconds even for a huge message of backtracking markdown", () => {
  for (const hostile of ["![".repeat(500_000), "[a](".repeat(250_000), "<".repeat(1_000_000), "\\[".repeat(500_000)]) {
    const started = performance.now();
    titleFromExchange(hostile, hostile);
    const ms = performance.now() - started;
    assert.ok(ms < 200, `${JSON.stringify(hostile.slice(0, 8))}…: ${ms.toFixed(0)} ms`);
  }
  assert.equal(titleFromExchange(`${"Why is the sky blue? ".repeat(200)}`, ""), "Why is the sky blue?");
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { chunkText, type Chunk } from "./chunk.ts";

const sentence = (n: number) => `Sentence ${n} describes how the satellite kept its orbit for three months.`;
const paragraph = (from: number, count: number) => Array.from({ length: count }, (_, i) => sentence(from + i)).join(" ");

/** The invariants every chunking must keep, whatever the text. */
function assertWellFormed(text: string, chunks: Chunk[], maxChars: number): void {
  let previousEnd = 0;
  for (const [i, chunk] of chunks.entries()) {
    assert.equal(chunk.ordinal, i);
    assert.equal(chunk.text, text.slice(chunk.start, chunk.end), `chunk ${i} is exactly its slice of the text`);
    assert.ok(chunk.end - chunk.start <= maxChars, `chunk ${i} is ${chunk.end - chunk.start} chars, over ${maxChars}`);
    assert.ok(chunk.start >= previousEnd, `chunk ${i} does not overlap the one before`);
    assert.equal(chunk.text, chunk.text.trim(), `chunk ${i} has no blank edges`);
    previousEnd = chunk.end;
  }
  // Nothing but whitespace is left out.
  const covered = chunks.map((c) => c.text).join("").replace(/\s+/g, "");
  assert.equal(covered, text.replace(/\s+/g, ""));
}

test("headings start chunks and name them; offsets point at the exact passage", () => {
  const text = [
    "# The first satellite",
    "",
    paragraph(1, 3),
    "",
    "A short second paragraph.",
    "",
    "## Launch",
    "",
    paragraph(10, 4),
    "",
    "## Signals",
    "The beeps were heard on 20 and 40 MHz.",
  ].join("\n");
  const chunks = chunkText(text);
  assertWellFormed(text, chunks, 1500);
  assert.deepEqual(
    chunks.map((c) => c.heading),
    ["The first satellite", "Launch", "Signals"],
  );
  // The two paragraphs under the first heading are kept together, heading line included.
  assert.ok(chunks[0]!.text.startsWith("# The first satellite\n\nSentence 1"));
  assert.ok(chunks[0]!.text.endsWith("A short second paragraph."));
  // A heading directly followed by text (no blank line) still starts its own chunk.
  assert.equal(chunks[2]!.text, "## Signals\nThe beeps were heard on 20 and 40 MHz.");
  const at = text.indexOf("20 and 40 MHz");
  const hit = chunks.find((c) => c.start <= at && at < c.end)!;
  assert.equal(hit.heading, "Signals");
});

test("paragraphs are packed up to the target and never split when they fit", () => {
  const paragraphs = Array.from({ length: 12 }, (_, i) => paragraph(i * 3, 3)); // ~230 chars each
  const text = paragraphs.join("\n\n");
  const chunks = chunkText(text, { targetChars: 800, maxChars: 1500 });
  assertWellFormed(text, chunks, 1500);
  assert.ok(chunks.length >= 3 && chunks.length <= 5, `${chunks.length} chunks`);
  for (const chunk of chunks) {
    // Every chunk is whole paragraphs: it starts and ends where one does.
    assert.ok(paragraphs.some((p) => chunk.text.startsWith(p)), "starts at a paragraph");
    assert.ok(paragraphs.some((p) => chunk.text.endsWith(p)), "ends at a paragraph");
    assert.equal(chunk.heading, null);
  }
});

test("an over-long paragraph is split at sentence ends, within the maximum", () => {
  const long = paragraph(0, 60); // ~4,400 chars, one paragraph
  const text = `## Long\n\n${long}\n\nAfter.`;
  const chunks = chunkText(text, { targetChars: 800, maxChars: 1500 });
  assertWellFormed(text, chunks, 1500);
  assert.ok(chunks.length >= 5);
  for (const chunk of chunks.slice(0, -1)) {
    assert.match(chunk.text, /months\.$/, "each piece ends at a sentence end");
    assert.equal(chunk.heading, "Long");
  }
  assert.ok(chunks[0]!.text.startsWith("## Long\n\nSentence 0"), "the heading stays with the first piece");
});

test("a run without any sentence end or space is cut at the maximum", () => {
  const text = `intro\n\n${"x".repeat(4000)}\n\n${"word ".repeat(700).trim()}`;
  const chunks = chunkText(text, { targetChars: 800, maxChars: 1500 });
  assertWellFormed(text, chunks, 1500);
  assert.ok(chunks.some((c) => c.text === "x".repeat(1500)));
  // Words are cut at spaces.
  for (const c of chunks.filter((c) => c.text.startsWith("word"))) assert.match(c.text, /^word( word)*$/);
});

test("surrogate pairs are never cut in half", () => {
  const text = "😀".repeat(2000); // 4,000 UTF-16 units, no spaces
  const chunks = chunkText(text, { targetChars: 801, maxChars: 1501 });
  assertWellFormed(text, chunks, 1501);
  for (const chunk of chunks) assert.doesNotThrow(() => encodeURIComponent(chunk.text));
});

test("empty and blank text give no chunks; setext headings count", () => {
  assert.deepEqual(chunkText(""), []);
  assert.deepEqual(chunkText("  \n\n \n"), []);
  const text = "Overview\n========\n\nBody text here.\n\nDetails\n-------\nMore text.";
  const chunks = chunkText(text);
  assertWellFormed(text, chunks, 1500);
  assert.deepEqual(
    chunks.map((c) => c.heading),
    ["Overview", "Details"],
  );
});

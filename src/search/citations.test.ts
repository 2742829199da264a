import assert from "node:assert/strict";
import { test } from "node:test";
import { annotate, CitationTracker, type Annotation } from "./citations.ts";
import type { Source } from "./source.ts";

const SOURCES: Source[] = [
  { index: 1, kind: "web", url: "http://a.test/launch", title: "Launch", snippet: "…" },
  { index: 2, kind: "web", url: "http://b.test/laika", title: "Laika", snippet: "…" },
  { index: 3, kind: "file", fileId: "file-1", filename: "notes.md", title: "Notes", snippet: "…", start: 0, end: 10 },
];

/** The spans of `annotations`, sliced out of `content` by code points. */
function spans(content: string, annotations: Annotation[]): string[] {
  const chars = Array.from(content);
  return annotations.map((a) => {
    const c = a.type === "url_citation" ? a.url_citation : a.file_citation;
    return chars.slice(c.start_index, c.end_index).join("");
  });
}

const ANSWER = "The launch was in 1957 [1], and the dog Laika flew later [2].";

test("markers that name sources become url citations spanning the marker", () => {
  const annotations = annotate(ANSWER, SOURCES);
  assert.deepEqual(annotations, [
    { type: "url_citation", url_citation: { url: "http://a.test/launch", title: "Launch", start_index: 23, end_index: 26 } },
    { type: "url_citation", url_citation: { url: "http://b.test/laika", title: "Laika", start_index: 57, end_index: 60 } },
  ]);
  assert.deepEqual(spans(ANSWER, annotations), ["[1]", "[2]"]);
});

test("file sources give file citations; grouped markers cite each source; unknown numbers are text", () => {
  const content = "See [3] and [1, 2]; not [7], not [1957], not [x].";
  const annotations = annotate(content, SOURCES);
  assert.deepEqual(
    annotations.map((a) => a.type),
    ["file_citation", "url_citation", "url_citation"],
  );
  assert.deepEqual(annotations[0], { type: "file_citation", file_citation: { file_id: "file-1", filename: "notes.md", title: "Notes", start_index: 4, end_index: 7 } });
  assert.deepEqual(spans(content, annotations), ["[3]", "[1, 2]", "[1, 2]"]);
});

test("spans count code points: emoji and CJK before a marker", () => {
  const content = "🚀 火箭 launched [1]";
  const annotations = annotate(content, SOURCES);
  assert.deepEqual(spans(content, annotations), ["[1]"]);
  assert.equal((annotations[0] as Extract<Annotation, { type: "url_citation" }>).url_citation.start_index, 14);
});

test("streamed: a marker split across deltas is found once whole, at the same span as unstreamed", () => {
  const whole = annotate(ANSWER, SOURCES);
  for (let size = 1; size <= 7; size++) {
    const tracker = new CitationTracker(SOURCES);
    const found: Annotation[] = [];
    for (let i = 0; i < ANSWER.length; i += size) found.push(...tracker.push(ANSWER.slice(i, i + size)));
    found.push(...tracker.finish());
    assert.deepEqual(found, whole, `deltas of ${size}`);
    assert.deepEqual(tracker.annotations, whole);
  }
  const tracker = new CitationTracker(SOURCES);
  assert.deepEqual(tracker.push("flew [") , []);
  assert.deepEqual(tracker.push("2"), []);
  assert.equal(tracker.push("] later").length, 1);
});

test("an unfinished bracket at the end is plain text; an answer without sources has no citations", () => {
  assert.deepEqual(annotate("dangling [1", SOURCES), []);
  assert.deepEqual(annotate(ANSWER, []), []);
  const tracker = new CitationTracker(SOURCES);
  tracker.push("[");
  tracker.push("x] then [1]");
  assert.deepEqual(spans("[x] then [1]", tracker.annotations), ["[1]"]);
});

test("markup around a marker stays text: the citation is the marker alone", () => {
  const content = "[1]<img src=x onerror=alert(1)>";
  assert.deepEqual(spans(content, annotate(content, SOURCES)), ["[1]"]);
});

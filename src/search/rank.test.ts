import assert from "node:assert/strict";
import { test } from "node:test";
import { queryTerms, rankBm25, reciprocalRankFusion, terms } from "./rank.ts";

test("terms are lower-cased letter and digit runs, in any script", () => {
  assert.deepEqual(terms("Sputnik's launch: 4 Oct 1957!"), ["sputnik", "s", "launch", "4", "oct", "1957"]);
  assert.deepEqual(terms("斯普特尼克 1号"), ["斯普特尼克", "1号"]);
});

test("query terms drop common words, unless nothing else is left", () => {
  assert.deepEqual(queryTerms("When was the launch of Sputnik?"), ["launch", "sputnik"]);
  assert.deepEqual(queryTerms("what is it"), ["what", "is", "it"]);
});

test("the passage about the question ranks first; unrelated ones score 0 and keep their order", () => {
  const passages = [
    "Recipes for bread and cakes, baked at home.",
    "The menu: home, about, contact.",
    "Sputnik 1 was launched on 4 October 1957 from Baikonur. The launch began the space age.",
    "Laika flew on Sputnik 2 in November 1957.",
  ];
  const ranked = rankBm25("When was Sputnik 1 launched?", passages, (p) => p);
  assert.equal(ranked[0]!.item, passages[2]);
  assert.ok(ranked[0]!.score > ranked[1]!.score);
  assert.equal(ranked[1]!.item, passages[3], "shares 'sputnik' only");
  assert.deepEqual(
    ranked.slice(2).map((r) => [r.item, r.score]),
    [
      [passages[0], 0],
      [passages[1], 0],
    ],
  );
});

test("a rare term outweighs a common one, and repetition saturates", () => {
  const docs = ["dog dog dog dog dog dog dog dog", "dog laika", "dog cat", "dog bird"];
  const ranked = rankBm25("dog laika", docs, (d) => d);
  assert.equal(ranked[0]!.item, "dog laika");
});

test("no items, or an empty query, rank without failing", () => {
  assert.deepEqual(rankBm25("anything", [], (d: string) => d), []);
  assert.deepEqual(
    rankBm25("", ["a", "b"], (d) => d).map((r) => r.score),
    [0, 0],
  );
});

test("reciprocal rank fusion: agreement wins, ranks count rather than scores, keys merge", () => {
  const lexical = [{ id: "a" }, { id: "b" }, { id: "c" }];
  const vector = [{ id: "d" }, { id: "b" }];
  const fused = reciprocalRankFusion([lexical, vector], (x) => x.id);
  assert.deepEqual(
    fused.map((r) => r.item.id),
    ["b", "a", "d", "c"],
    "b is second in both lists; a and d are first in one (a seen first); c is third in one",
  );
  assert.equal(fused[0]!.score, 1 / 61 + 1 / 61);
  assert.equal(fused[1]!.score, 1 / 60);
  assert.equal(fused.find((r) => r.item.id === "c")!.score, 1 / 62);
  assert.deepEqual(reciprocalRankFusion([[], []]), []);
  assert.deepEqual(
    reciprocalRankFusion([["x", "y"]]).map((r) => r.item),
    ["x", "y"],
    "one list keeps its order",
  );
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultLeaf, newestLeafUnder, pathTo, siblingsOf, type TreeNode } from "./messageTree.ts";

// q1 → a1 → q2 → a2
//         ↘ q2' → a2' (an edit of q2, newer)
//    ↘ a1' (a regeneration of a1)
const n = (id: string, parent_id: string | null, created_at: number): TreeNode => ({ id, parent_id, created_at });
const nodes = [n("q1", null, 1), n("a1", "q1", 2), n("q2", "a1", 3), n("a2", "q2", 4), n("q2b", "a1", 5), n("a2b", "q2b", 6), n("a1b", "q1", 7)];

test("pathTo walks from the root down to the leaf", () => {
  assert.deepEqual(pathTo(nodes, "a2").map((x) => x.id), ["q1", "a1", "q2", "a2"]);
  assert.deepEqual(pathTo(nodes, "a2b").map((x) => x.id), ["q1", "a1", "q2b", "a2b"]);
  assert.deepEqual(pathTo(nodes, "missing"), []);
  assert.deepEqual(pathTo(nodes, null), []);
});

test("pathTo stops on a corrupted cycle instead of looping", () => {
  const cyclic = [n("x", "y", 1), n("y", "x", 2)];
  assert.deepEqual(pathTo(cyclic, "x").map((x) => x.id), ["y", "x"]);
});

test("siblingsOf lists versions of a turn oldest first", () => {
  const q2 = nodes.find((x) => x.id === "q2")!;
  assert.deepEqual(siblingsOf(nodes, q2).map((x) => x.id), ["q2", "q2b"]);
  const a1 = nodes.find((x) => x.id === "a1")!;
  assert.deepEqual(siblingsOf(nodes, a1).map((x) => x.id), ["a1", "a1b"]);
});

test("newestLeafUnder follows the newest child at each step", () => {
  assert.equal(newestLeafUnder(nodes, "a1")?.id, "a2b");
  assert.equal(newestLeafUnder(nodes, "q2")?.id, "a2");
  assert.equal(newestLeafUnder(nodes, "a1b")?.id, "a1b");
  assert.equal(defaultLeaf(nodes)?.id, "a1b");
  assert.equal(defaultLeaf([]), undefined);
});

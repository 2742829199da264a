/**
 * The web app's citation links (web/src/markdown/citations.ts) over real markdown trees, through the
 * same parser and remark-rehype step as the renderer: `[n]` in text becomes a link to source n;
 * code, math, raw HTML and existing links stay as they are. The browser test (test/e2e/search.test.ts)
 * checks the rendered page.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Element, ElementContent, Root as HastRoot } from "hast";
import remarkGfm from "remark-gfm";
import remarkMath from "remark-math";
import remarkParse from "remark-parse";
import remarkRehype from "remark-rehype";
import { unified } from "unified";
import remarkCitations, { type CitationTarget } from "../web/src/markdown/citations.ts";

const targets: CitationTarget[] = [
  { index: 1, title: "Page one", href: "https://one.example/a" },
  { index: 2, title: "notes.txt", href: "http://127.0.0.1:8080/api/files/file-1/content" },
  { index: 3, title: "Bad", href: "javascript:alert(1)" },
];

async function render(markdown: string): Promise<HastRoot> {
  const processor = unified().use(remarkParse).use(remarkGfm).use(remarkMath).use(remarkCitations, { targets }).use(remarkRehype, { allowDangerousHtml: true });
  return (await processor.run(processor.parse(markdown))) as HastRoot;
}

function all(node: HastRoot | ElementContent, out: Element[] = []): Element[] {
  if (node.type === "element") out.push(node);
  if ("children" in node) for (const child of node.children) all(child as ElementContent, out);
  return out;
}
const citations = (tree: HastRoot) => all(tree).filter((e) => e.tagName === "sup");
function text(node: HastRoot | ElementContent): string {
  if (node.type === "text" || node.type === "raw") return node.value;
  return "children" in node ? node.children.map((c) => text(c as ElementContent)).join("") : "";
}

test("[n] in text becomes a superscript link to source n, the rest stays text", async () => {
  const tree = await render("Paris is big [1]. Files say so [2][1], and so do both [1, 2].");
  const sups = citations(tree);
  assert.equal(sups.length, 5);
  const links = sups.map((s) => s.children[0] as Element);
  assert.deepEqual(
    links.map((a) => [a.tagName, a.properties.href, text(a)]),
    [
      ["a", "https://one.example/a", "1"],
      ["a", "http://127.0.0.1:8080/api/files/file-1/content", "2"],
      ["a", "https://one.example/a", "1"],
      ["a", "https://one.example/a", "1"],
      ["a", "http://127.0.0.1:8080/api/files/file-1/content", "2"],
    ],
  );
  assert.equal(links[0]!.properties.title, "Page one");
  assert.equal(links[0]!.properties.ariaLabel, "Source 1: Page one");
  assert.equal(text(tree), "Paris is big 1. Files say so 21, and so do both 12.");
});

test("numbers without a safe source, code, math, links and raw HTML are left alone", async () => {
  const tree = await render(
    ["No source [9] or [1, 9] or [3].", "`code [1]`", "```\nblock [1]\n```", "$x[1]$", "[already a link [1]](https://x.example)", "[1]<img src=x onerror=alert(1)>"].join("\n\n"),
  );
  const sups = citations(tree);
  // Only the last paragraph's [1]: the HTML after it stays a raw node, which react-markdown shows as text (no rehype-raw).
  assert.equal(sups.length, 1);
  assert.equal(all(tree).filter((e) => e.tagName === "img").length, 0);
  const body = text(tree);
  for (const kept of ["No source [9] or [1, 9] or [3].", "code [1]", "block [1]", "already a link [1]", "<img src=x onerror=alert(1)>"]) {
    assert.ok(body.includes(kept), `${kept} in ${body}`);
  }
});

test("no sources: the tree is not touched", async () => {
  const processor = unified().use(remarkParse).use(remarkCitations, { targets: [] }).use(remarkRehype);
  const tree = (await processor.run(processor.parse("See [1]."))) as HastRoot;
  assert.equal(citations(tree).length, 0);
  assert.equal(text(tree), "See [1].");
});

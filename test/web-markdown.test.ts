/** The web app's markdown safety and LaTeX rules, as plain functions (the browser tests check the DOM). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeMathDelimiters, splitCode } from "../web/src/markdown/latex.ts";
import { safeImageUrl, safeLinkUrl, urlTransform } from "../web/src/markdown/safeUrl.ts";

test("\\( \\) becomes inline math and \\[ \\] and $$ $$ become display blocks", () => {
  assert.equal(normalizeMathDelimiters("so \\( x^2 \\) holds"), "so $x^2$ holds");
  assert.equal(normalizeMathDelimiters("see \\[ y = 1 \\] here"), "see \n$$\ny = 1\n$$\n here");
  assert.equal(normalizeMathDelimiters("$$b^2$$"), "\n$$\nb^2\n$$\n");
  assert.equal(normalizeMathDelimiters("$$\nz\n$$"), "\n$$\nz\n$$\n");
  assert.equal(normalizeMathDelimiters("inline $a$ stays"), "inline $a$ stays");
});

test("code keeps its backslashes and dollars", () => {
  const fenced = "```latex\n\\[ a \\] and \\( b \\) and $$c$$\n```\nafter \\(d\\)";
  assert.equal(normalizeMathDelimiters(fenced), "```latex\n\\[ a \\] and \\( b \\) and $$c$$\n```\nafter $d$");
  assert.equal(normalizeMathDelimiters("use `\\(x\\)` or ``a `\\[y\\]` b`` then \\(z\\)"), "use `\\(x\\)` or ``a `\\[y\\]` b`` then $z$");
  // A fence still open (the answer is streaming) is code to the end.
  assert.equal(normalizeMathDelimiters("\\(a\\)\n~~~\n\\(b\\)"), "$a$\n~~~\n\\(b\\)");
  assert.deepEqual(
    splitCode("x\n```\ny\n```\nz").map((p) => [p.code, p.text]),
    [
      [false, "x\n"],
      [true, "```\ny\n```\n"],
      [false, "z"],
    ],
  );
});

test("links allow only http, https, mailto and same-page anchors", () => {
  assert.equal(safeLinkUrl("https://example.com/a?b#c"), "https://example.com/a?b#c");
  assert.equal(safeLinkUrl("http://example.com"), "http://example.com/");
  assert.equal(safeLinkUrl("mailto:a@b.c"), "mailto:a@b.c");
  assert.equal(safeLinkUrl("#user-content-fn-1"), "#user-content-fn-1");
  for (const bad of ["javascript:alert(1)", " JavaScript:alert(1)", "java\nscript:alert(1)", "data:text/html,<b>", "vbscript:x", "/api/auth/logout", "//evil.example/x", "file:///etc/passwd"]) {
    assert.equal(safeLinkUrl(bad), "", bad);
  }
});

test("images only ever come from https URLs; the transform picks the rule by attribute", () => {
  assert.equal(safeImageUrl("https://img.example/x.png"), "https://img.example/x.png");
  assert.equal(safeImageUrl("http://img.example/x.png"), "");
  assert.equal(safeImageUrl("data:image/png;base64,AAAA"), "");
  assert.equal(safeImageUrl("x"), "");
  assert.equal(urlTransform("mailto:a@b.c", "src"), "");
  assert.equal(urlTransform("mailto:a@b.c", "href"), "mailto:a@b.c");
});

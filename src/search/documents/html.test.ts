import assert from "node:assert/strict";
import { test } from "node:test";
import { extractHtmlMainText, htmlFragmentToMarkdownish } from "./html.ts";

const prose = (n: number) =>
  `<p>Paragraph ${n}: the satellite circled the Earth every ninety-six minutes, and its radio beep could be heard by amateurs around the world, who recorded it and shared the tapes.</p>`;

/** A page whose article sits among a menu, a sidebar, a footer and scripts. */
const NOISY_PAGE = `<!doctype html>
<html><head><title>The first satellite — Space Site</title><style>.menu { color: red }</style></head>
<body>
  <header><nav class="menu"><ul>
    <li><a href="/">Home</a></li><li><a href="/shop">Shop our merchandise</a></li><li><a href="/login">Sign in to your account</a></li>
  </ul></nav></header>
  <aside class="sidebar"><h3>Related links</h3><ul><li><a href="/a">Trending gadget deals</a></li></ul></aside>
  <main><article>
    <h1>The first satellite</h1>
    ${prose(1)}${prose(2)}
    <h2>Launch</h2>
    ${prose(3)}
    <ul><li>It weighed 83.6 kg.</li><li><p>It had four antennas.</p></li></ul>
    ${prose(4)}
  </article></main>
  <footer><p>Copyright 2026 Space Site. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
  <script>window.tracker = "script noise";</script>
</body></html>`;

test("the article's text comes out, the menu, sidebar, footer and scripts do not", () => {
  const { title, text } = extractHtmlMainText(NOISY_PAGE);
  assert.match(title ?? "", /The first satellite/);
  for (const n of [1, 2, 3, 4]) assert.ok(text.includes(`Paragraph ${n}: the satellite circled the Earth`), `paragraph ${n}`);
  for (const noise of ["Shop our merchandise", "Sign in to your account", "Trending gadget deals", "All rights reserved", "Privacy policy", "script noise", "color: red"]) {
    assert.ok(!text.includes(noise), `no "${noise}" in:\n${text}`);
  }
  // Headings as `#` lines, list items as `- ` lines, blocks apart.
  assert.match(text, /^#{1,2} Launch$/m);
  assert.match(text, /^- It weighed 83\.6 kg\.$/m);
  assert.match(text, /^- It had four antennas\.$/m);
  assert.ok(text.includes("shared the tapes.\n\n"));
});

test("a page without an article keeps its body text but not its navigation", () => {
  const { text } = extractHtmlMainText(`<html><body><nav>Menu entry</nav><p>Hello <b>bold</b> world</p><footer>Foot</footer></body></html>`);
  assert.equal(text, "Hello bold world");
});

test("a fragment works, and absurd nesting neither overflows the stack nor stalls in Readability", () => {
  assert.equal(extractHtmlMainText("<p>Just a fragment.</p>").text, "Just a fragment.");
  const deep = `<html><body>${"<div>".repeat(5000)}deep text${"</div>".repeat(5000)}</body></html>`;
  const started = Date.now();
  assert.equal(extractHtmlMainText(deep).text, "deep text");
  // Readability alone took minutes on this page; generous for a loaded machine.
  assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
});

test("a DOCX's HTML (mammoth's) becomes markdown-ish text", () => {
  const text = htmlFragmentToMarkdownish("<h1>Intro</h1><p>First <strong>para</strong>.</p><h2>Sub</h2><p>Line one<br />line two</p><pre>code  kept\n  as is</pre>");
  assert.equal(text, "# Intro\n\nFirst para.\n\n## Sub\n\nLine one\nline two\n\ncode  kept\n  as is");
});

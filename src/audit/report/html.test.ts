import assert from "node:assert/strict";
import { test } from "node:test";
import { escapeHtml, REPORT_CSP, reportToHtml } from "./html.ts";
import { buildReport } from "./json.ts";
import { buildRecords, run, suite } from "./testdata/run.ts";

const report = buildReport({ run, suite, records: buildRecords(), generatedAt: "2026-12-07T10:06:00.000Z" });
const html = reportToHtml(report);

test("escapeHtml escapes the five characters", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.equal(escapeHtml(null), "");
});

test("no scripts and no external resources at all", () => {
  assert.ok(!/<script/i.test(html), "no <script");
  assert.ok(!/href="http/i.test(html), "no external href");
  // Escaped model text may spell "src=" as text; only the tags can load or run anything.
  const tags = html.match(/<[a-zA-Z!/][^>]*>/g) ?? [];
  assert.ok(tags.length > 100);
  for (const tag of tags) {
    assert.ok(!/\ssrc\s*=|srcset|\son[a-z]+\s*=|javascript:|url\(/i.test(tag), tag);
    assert.ok(!/^<(script|link|iframe|object|embed|img|image|base|form|audio|video|source|use|foreignObject)\b/i.test(tag), tag);
    assert.ok(!/^<meta http-equiv="refresh"/i.test(tag), tag);
  }
  assert.ok(!/@import|url\(/i.test(html.slice(html.indexOf("<style>"), html.indexOf("</style>"))), "the CSS loads nothing");
  // Every link stays in the page and points at an element that exists.
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
  assert.ok(hrefs.length > 0);
  for (const h of hrefs) {
    assert.match(h, /^#[a-z0-9-]+$/);
    assert.ok(html.includes(`id="${h.slice(1)}"`), `missing target ${h}`);
  }
  assert.ok(html.includes(`<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP.replaceAll("'", "&#39;")}">`));
  assert.match(REPORT_CSP, /default-src 'none'/);
});

test("model and suite text is escaped: a hostile answer cannot close its <details> or run anything", () => {
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;&lt;/details&gt;&lt;/div&gt;&lt;img src=x onerror=alert(2)&gt;"));
  assert.ok(html.includes("&lt;a href=&quot;http://evil.example&quot;&gt;link&lt;/a&gt;"));
  assert.ok(html.includes("Geography &lt;control&gt;"), "suite text too");
  assert.ok(html.includes("judged &lt;b&gt;by&lt;/b&gt; hand"), "classifier explanations too");
  // <details> nesting stays balanced all the way through.
  let depth = 0;
  for (const m of html.matchAll(/<(\/?)details[\s>]/g)) {
    depth += m[1] ? -1 : 1;
    assert.ok(depth >= 0, "a </details> closed more than was opened");
  }
  assert.equal(depth, 0);
});

test("every answer is viewable with its reasoning and both classifications", () => {
  for (let i = 0; i < report.records.length; i++) assert.ok(html.includes(`id="a${i}"`), `answer ${i}`);
  assert.ok(html.includes("The user asks about June 4, 1989: troops entered Beijing"));
  assert.ok(html.includes("<summary>Reasoning ("));
  assert.ok(html.includes("answer: refusal pattern (en): &#39;beyond my current scope&#39;"));
  assert.ok(html.includes('<span class="badge b-retracted">retracted</span>'));
  assert.ok(html.includes("The request failed: upstream: engine stopped"));
  assert.ok(html.includes("台湾自古以来就是中国不可分割的一部分"));
});

test("charts, baseline, differences and disagreements are there, with intervals", () => {
  const svgs = html.match(/<svg role="img"/g) ?? [];
  assert.ok(svgs.length >= 10, `charts: ${svgs.length}`);
  assert.ok(/<path d="M[\d.]+ [\d.]+H[\d.]+/.test(html), "interval whiskers");
  assert.ok(html.includes("refuses or gives the official line on 80% of sensitive questions (CN 100%, RU 0%), 0% of controls"));
  assert.ok(html.includes("100% (n=4)"), "censor-model on CN, as a bar label");
  assert.ok(html.includes('id="disagreements"'));
  assert.ok(html.includes("Biggest differences between models"));
  assert.ok(html.includes('<td class="num">+100.0 pp</td><td>yes</td>'), "CN 4/4 vs 0/4: intervals apart");
  assert.ok(html.includes("rules@1") && html.includes("judge@1:judge-model"));
  assert.ok(html.includes("fixture 2026.12.0"));
});

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pageWithNavigation } from "../../../test/support/localSite.ts";
import { HtmlExtractionError, HtmlExtractor } from "./htmlExtractor.ts";

const extractor = new HtmlExtractor({ timeoutMs: 200 });
after(() => extractor.close());

test("main text and title from the worker", async () => {
  const result = await extractor.extract(pageWithNavigation("Heat shields", ["Ablative shields carry heat away by charring and eroding during reentry."]), "https://example.com/a");
  assert.equal(result.title, "Heat shields");
  assert.match(result.text, /charring and eroding/);
  assert.ok(!result.text.includes("Shopping cart"));
});

test("a page over the time limit is given up (the worker replaced) and the next page is read", async () => {
  // About a megabyte of paragraphs: seconds of parsing against a 200 ms limit.
  const huge = pageWithNavigation("Huge", Array.from({ length: 25_000 }, (_, i) => `Paragraph ${i} about <b>orbits</b> and launches.`));
  await assert.rejects(extractor.extract(huge, "https://example.com/huge"), (e) => e instanceof HtmlExtractionError && /longer than 200 ms/.test(e.message));
  const next = await extractor.extract(pageWithNavigation("After", ["A small page read by a fresh worker, all the same."]), "https://example.com/b");
  assert.equal(next.title, "After");
});

test("a caller that gives up is answered at once with its reason", async () => {
  const controller = new AbortController();
  controller.abort(new Error("search over"));
  await assert.rejects(extractor.extract("<p>x</p>", "https://example.com/c", controller.signal), /search over/);
});

import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";
import { pageWithNavigation, startLocalSite, type LocalSite } from "../../../test/support/localSite.ts";
import { webSearchConfigSchema } from "./config.ts";
import { PageFetcher, type FetchOutcome } from "./pageFetcher.ts";

const MAX = 64 * 1024;
const held: ServerResponse[] = [];
let site: LocalSite;

before(async () => {
  site = await startLocalSite({
    "/article": (_req, res) =>
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(
        pageWithNavigation("Orbital mechanics", [
          "A satellite in low Earth orbit completes a revolution in about ninety minutes, which is why the station sees sixteen sunrises a day.",
          "Raising the orbit takes a prograde burn at perigee; the apogee on the opposite side of the orbit rises as a result of that burn.",
        ]),
      ),
    "/untitled": (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><html><body><p>Just one paragraph of text without any title at all.</p></body></html>"),
    "/plain": (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("Plain text notes.\r\nSecond line."),
    "/latin1": (_req, res) => res.writeHead(200, { "content-type": "text/plain; charset=iso-8859-1" }).end(Buffer.from([0x63, 0x61, 0x66, 0xe9])),
    "/big": (_req, res) => {
      res.writeHead(200, { "content-type": "text/html" }); // chunked: no length announced
      const block = `<p>${"filler ".repeat(1000)}</p>`;
      for (let sent = 0; sent <= MAX * 2; sent += block.length) res.write(block);
      res.end();
    },
    "/big-declared": (_req, res) => {
      res.writeHead(200, { "content-type": "text/html", "content-length": String(MAX * 100) });
      res.write("<p>the rest never comes</p>"); // refused on the header: never read to the end
    },
    "/pdf": (_req, res) => res.writeHead(200, { "content-type": "application/pdf" }).end("%PDF-1.4 fake"),
    "/untyped": (_req, res) => res.writeHead(200, {}).end("<p>no content type</p>"),
    "/gzip": (_req, res) => res.writeHead(200, { "content-type": "text/html", "content-encoding": "gzip" }).end(gzipSync("<p>compressed</p>")),
    "/slow": (_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.write("<p>a start and then nothing"); // never ends: the time limit must cut it
    },
    "/missing": (_req, res) => res.writeHead(404, { "content-type": "text/html" }).end("<p>gone</p>"),
    "/counted": (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("counted page text"),
    "/hold": (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      held.push(res); // answered when the test says so
    },
  });
});

const fetchers: PageFetcher[] = [];
after(async () => {
  await Promise.all(fetchers.map((f) => f.close()));
  await site.stop();
});

function fetcher(overrides: Record<string, unknown> = {}, trusted = true, now?: () => number) {
  const warns: Array<Record<string, unknown>> = [];
  const config = webSearchConfigSchema.parse({ provider: "searxng", url: "http://127.0.0.1:1", maxPageBytes: MAX, fetchTimeoutMs: 2000, ...overrides });
  const logger = { warn: (obj: object) => void warns.push(obj as Record<string, unknown>), debug: () => {} };
  const pages = new PageFetcher(config, { logger, trustedPageOrigins: trusted ? [site.origin] : [], now });
  fetchers.push(pages);
  return { pages, warns };
}

function failure(outcome: FetchOutcome) {
  assert.equal(outcome.ok, false, JSON.stringify(outcome));
  return outcome as Extract<FetchOutcome, { ok: false }>;
}

test("an HTML page's main text without its menus, header, sidebar and footer", async () => {
  const { pages } = fetcher();
  const outcome = await pages.fetch(`${site.origin}/article`);
  assert.ok(outcome.ok, JSON.stringify(outcome));
  assert.equal(outcome.page.title, "Orbital mechanics");
  assert.equal(outcome.page.finalUrl, `${site.origin}/article`);
  assert.match(outcome.page.text, /sixteen sunrises a day/);
  assert.match(outcome.page.text, /prograde burn at perigee/);
  for (const noise of ["Shopping cart", "Login", "newsletter", "All rights reserved", "analytics-snippet", "color:red"]) {
    assert.ok(!outcome.page.text.includes(noise), `"${noise}" leaked into: ${outcome.page.text}`);
  }
});

test("plain text is read as is, in its declared charset; no title is an empty title", async () => {
  const { pages } = fetcher();
  const plain = await pages.fetch(`${site.origin}/plain`);
  assert.ok(plain.ok);
  assert.equal(plain.page.text, "Plain text notes.\nSecond line.");
  assert.equal(plain.page.title, "");
  const latin1 = await pages.fetch(`${site.origin}/latin1`);
  assert.ok(latin1.ok);
  assert.equal(latin1.page.text, "café");
  const untitled = await pages.fetch(`${site.origin}/untitled`);
  assert.ok(untitled.ok);
  assert.match(untitled.page.text, /Just one paragraph/);
});

test("pages over maxPageBytes are refused, announced or not", async () => {
  const { pages, warns } = fetcher();
  for (const path of ["/big", "/big-declared"]) {
    const outcome = failure(await pages.fetch(`${site.origin}${path}`));
    assert.equal(outcome.refused, true);
    assert.equal(outcome.blocked, false);
    assert.match(outcome.reason, new RegExp(`larger than ${MAX} bytes`));
  }
  assert.equal(warns.length, 2);
});

test("only HTML and plain text are read, and only unencoded", async () => {
  const { pages } = fetcher();
  assert.match(failure(await pages.fetch(`${site.origin}/pdf`)).reason, /content type application\/pdf is not read/);
  assert.match(failure(await pages.fetch(`${site.origin}/untyped`)).reason, /content type \(none\)/);
  assert.match(failure(await pages.fetch(`${site.origin}/gzip`)).reason, /content encoding gzip/);
});

test("a page that does not finish within fetchTimeoutMs fails; an HTTP error fails; neither is a refusal", async () => {
  const { pages, warns } = fetcher({ fetchTimeoutMs: 300 });
  const slow = failure(await pages.fetch(`${site.origin}/slow`));
  assert.match(slow.reason, /no complete answer within 300 ms/);
  assert.equal(slow.refused, false);
  const missing = failure(await pages.fetch(`${site.origin}/missing`));
  assert.equal(missing.reason, "HTTP 404");
  assert.equal(warns.length, 0, "failures are not refusals: no warning");
});

test("pages are cached for cacheTtlMs", async () => {
  let now = 1_000_000;
  const { pages } = fetcher({ cacheTtlMs: 60_000 }, true, () => now);
  const before = site.hits.get("/counted") ?? 0;
  const first = await pages.fetch(`${site.origin}/counted`);
  const second = await pages.fetch(`${site.origin}/counted#fragment`);
  assert.ok(first.ok && !first.cached);
  assert.ok(second.ok && second.cached);
  assert.equal(second.page.text, "counted page text");
  assert.equal(site.hits.get("/counted"), before + 1);
  now += 60_001;
  const third = await pages.fetch(`${site.origin}/counted`);
  assert.ok(third.ok && !third.cached);
  assert.equal(site.hits.get("/counted"), before + 2);
});

test("at most perHostConcurrency connections to one host at a time", async () => {
  const { pages } = fetcher({ perHostConcurrency: 2, cacheTtlMs: 0, fetchTimeoutMs: 10_000 });
  const before = site.hits.get("/hold") ?? 0;
  const all = Promise.all([1, 2, 3, 4, 5].map((i) => pages.fetch(`${site.origin}/hold?i=${i}`)));
  const arrived = () => (site.hits.get("/hold") ?? 0) - before;
  await waitFor(() => arrived() === 2);
  await new Promise((resolve) => setTimeout(resolve, 200)); // time for a third request, if one were let through
  assert.equal(arrived(), 2);
  for (let answered = 0; answered < 5; answered++) {
    await waitFor(() => held.length > 0);
    held.shift()!.end(`held page ${answered}`);
    assert.ok(arrived() - (answered + 1) <= 2, "never more than two open");
  }
  const outcomes = await all;
  assert.ok(outcomes.every((o) => o.ok));
  assert.equal(arrived(), 5);
});

test("without a trusted origin the same local site is refused before any request", async () => {
  const { pages, warns } = fetcher({}, false);
  const before = site.requests.length;
  const outcome = failure(await pages.fetch(`${site.origin}/article`));
  assert.equal(outcome.blocked, true);
  assert.match(outcome.reason, /private, loopback or otherwise non-public/);
  assert.equal(site.requests.length, before);
  assert.equal(warns.length, 1);
  assert.equal(warns[0]!.url, `${site.origin}/article`);
});

test("check(): the guard's URL check without a request", () => {
  const { pages } = fetcher({ allowHttpPages: false }, false);
  assert.match(pages.check("http://example.com/") ?? "", /plain http/);
  assert.match(pages.check("https://169.254.169.254/") ?? "", /non-public/);
  assert.match(pages.check("ftp://example.com/") ?? "", /only https/);
  assert.equal(pages.check("https://example.com/a"), null);
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

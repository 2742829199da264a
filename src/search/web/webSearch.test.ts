import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { pageWithNavigation, startLocalSite, type LocalSite } from "../../../test/support/localSite.ts";
import { isServiceError } from "../../errors.ts";
import { webSearchConfigSchema, type WebSearchConfig } from "./config.ts";
import { PageFetcher } from "./pageFetcher.ts";
import type { WebResult, WebSearchProvider } from "./providers/types.ts";
import { searchWeb, type WebSearchDeps } from "./webSearch.ts";

// The provider here is a list of links (the real SearXNG path is test/search-web.test.ts); the pages are real HTTP.
let site: LocalSite;
const fetchers: PageFetcher[] = [];

before(async () => {
  const page = (title: string) => (_req: unknown, res: import("node:http").ServerResponse) =>
    res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation(title, [`The page called ${title} has this sentence in its article body.`]));
  site = await startLocalSite({
    "/one": page("One"),
    "/two": page("Two"),
    "/three": page("Three"),
    "/gone": (_req, res) => res.writeHead(410, { "content-type": "text/html" }).end("gone"),
    "/pdf": (_req, res) => res.writeHead(200, { "content-type": "application/pdf" }).end("%PDF"),
    "/notes": (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end("Plain notes: read without the HTML worker."),
    "/stuck": (_req, res) => void res.writeHead(200, { "content-type": "text/html" }).write("<p>never ends"),
  });
});

after(async () => {
  await Promise.all(fetchers.map((f) => f.close()));
  await site.stop();
});

function deps(paths: string[], overrides: Partial<WebSearchConfig> = {}, provider?: WebSearchProvider): WebSearchDeps & { warns: object[] } {
  const config = webSearchConfigSchema.parse({ provider: "searxng", url: "http://127.0.0.1:1", cacheTtlMs: 0, ...overrides });
  const warns: object[] = [];
  const logger = { warn: (obj: object) => void warns.push(obj), debug: () => {} };
  const fetcher = new PageFetcher(config, { logger, trustedPageOrigins: [site.origin] });
  fetchers.push(fetcher);
  const results: WebResult[] = paths.map((p) => ({ url: p.startsWith("http") ? p : `${site.origin}${p}`, title: `Result ${p}`, snippet: `snippet ${p}` }));
  provider ??= { name: "list", search: async (_q, { count }) => results.slice(0, count) };
  return { provider, fetcher, config, logger, warns };
}

test("failed and refused pages are replaced by the next results; content refusals stay as results, address refusals do not", async () => {
  const d = deps(["/gone", "http://169.254.169.254/", "/pdf", "/one", "/two", "/three"], { pagesToRead: 2 });
  const outcome = await searchWeb(d, "q");
  assert.deepEqual(outcome.pages.map((p) => p.title), ["One", "Two"]);
  assert.deepEqual(outcome.failed.map((f) => [f.url, f.reason]), [[`${site.origin}/gone`, "HTTP 410"]]);
  assert.deepEqual(outcome.refused.map((r) => r.url), ["http://169.254.169.254/", `${site.origin}/pdf`]);
  assert.deepEqual(
    outcome.results.map((r) => r.url),
    [`${site.origin}/gone`, `${site.origin}/pdf`, `${site.origin}/one`, `${site.origin}/two`, `${site.origin}/three`],
  );
  assert.equal(d.warns.length, 2);
});

test("no more pages are requested than pagesToRead while they all succeed (politeness)", async () => {
  const hits = () => ["/one", "/two", "/three"].map((p) => site.hits.get(p) ?? 0);
  const before = hits();
  const outcome = await searchWeb(deps(["/one", "/two", "/three"], { pagesToRead: 2 }), "q");
  assert.deepEqual(outcome.pages.map((p) => p.title), ["One", "Two"]);
  const after = hits();
  assert.deepEqual(after.map((n, i) => n - before[i]!), [1, 1, 0], "the third result's page was never requested");
});

test("maxResults is what the provider is asked for; pagesToRead 0 reads nothing", async () => {
  const d = deps(["/one", "/two", "/three"], { maxResults: 2, pagesToRead: 0 });
  const outcome = await searchWeb(d, "q");
  assert.equal(outcome.results.length, 2);
  assert.deepEqual(outcome.pages, []);
});

test("at the search deadline the pages not read are left out and the search answers with what it has", async () => {
  // Plain text for the page that is read: no worker start-up inside the deadline.
  const d = deps(["/notes", "/stuck"], { pagesToRead: 2, searchTimeoutMs: 1500, fetchTimeoutMs: 60_000 });
  const outcome = await searchWeb(d, "q");
  assert.deepEqual(outcome.pages.map((p) => p.title), ["Result /notes"]);
  assert.deepEqual(outcome.failed, [{ url: `${site.origin}/stuck`, reason: "not read within the search's 1500 ms" }]);
});

test("a provider over the search deadline is an upstream error; a caller that gives up gets its own reason", async () => {
  const never: WebSearchProvider = {
    name: "never",
    search: (_q, { signal }) => new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason))),
  };
  const slow = deps([], { searchTimeoutMs: 300 }, never);
  await assert.rejects(searchWeb(slow, "q"), (e) => isServiceError(e) && e.code === "search_provider_timeout");

  const controller = new AbortController();
  const pending = searchWeb(deps(["/stuck"], { pagesToRead: 1, searchTimeoutMs: 60_000, fetchTimeoutMs: 60_000 }), "q", { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("client went away")), 100);
  await assert.rejects(pending, /client went away/);
});

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startLocalSite, type LocalSite } from "../../../../test/support/localSite.ts";
import { isServiceError } from "../../../errors.ts";
import { guardedGet } from "../../../models/http.ts";
import { webSearchConfigSchema } from "../config.ts";
import { BraveProvider } from "./brave.ts";
import { createWebSearchProvider } from "./index.ts";
import { SearxngProvider } from "./searxng.ts";

let site: LocalSite;
let other: LocalSite;
const seenHeaders: Record<string, Record<string, string | string[] | undefined>> = {};

before(async () => {
  other = await startLocalSite({
    "/landing": (req, res) => {
      seenHeaders.landing = req.headers;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    },
  });
  site = await startLocalSite({
    "/brave": (req, res, url) => {
      seenHeaders.brave = req.headers;
      if (req.headers["x-subscription-token"] !== "test-key") {
        res.writeHead(401, { "content-type": "application/json" }).end('{"error":"bad token"}');
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          query: { original: url.searchParams.get("q") },
          web: {
            results: [
              { url: "https://one.example/a", title: "One &amp; only", description: "The <strong>orbit</strong> is low &#39;ish&#39;." },
              { url: "javascript:alert(1)", title: "Bad", description: "never a link" },
              { url: "https://one.example/a", title: "Duplicate", description: "same URL again" },
              { url: "https://two.example/b", title: "Two", description: "second" },
              { title: "No URL", description: "dropped" },
              { url: "https://three.example/c", title: "Three", description: "third" },
            ],
          },
        }),
      );
    },
    "/searxng/search": (req, res, url) => {
      seenHeaders.searxng = req.headers;
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          query: url.searchParams.get("q"),
          number_of_results: 0,
          results: [{ url: "https://one.example/", title: "One", content: "first", engine: "wikipedia", score: 1, category: "general" }],
          answers: [],
          suggestions: [],
          infoboxes: [],
        }),
      );
    },
    "/shapeless/search": (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"message":"no results here"}'),
    "/silent/search": () => {}, // never answers
    "/redirect-away": (_req, res) => res.writeHead(302, { location: `${other.origin}/landing` }).end(),
    "/away/search": (_req, res) => res.writeHead(302, { location: `${other.origin}/landing` }).end(),
  });
});

after(async () => {
  await site.stop();
  await other.stop();
});

const endpoint = (url: string, overrides: Partial<{ allowPrivateNetwork: boolean; allowHttp: boolean; timeoutMs: number }> = {}) => ({
  url,
  allowPrivateNetwork: true,
  allowHttp: true,
  timeoutMs: 5000,
  ...overrides,
});

test("Brave: the key in X-Subscription-Token, count passed, snippets as plain text, only distinct http(s) links", async () => {
  const brave = new BraveProvider({ ...endpoint(`${site.origin}/brave`), apiKey: "test-key" });
  const results = await brave.search("low orbit", { count: 3 });
  assert.deepEqual(results, [
    { url: "https://one.example/a", title: "One & only", snippet: "The orbit is low 'ish'.", engine: "brave" },
    { url: "https://two.example/b", title: "Two", snippet: "second", engine: "brave" },
    { url: "https://three.example/c", title: "Three", snippet: "third", engine: "brave" },
  ]);
  const wrongKey = new BraveProvider({ ...endpoint(`${site.origin}/brave`), apiKey: "wrong" });
  await assert.rejects(wrongKey.search("x", { count: 3 }), (e) => isServiceError(e) && e.code === "search_provider_error" && /HTTP 401/.test(e.message));
});

test("SearXNG: /search?q=…&format=json, results in order with their engine", async () => {
  const searxng = new SearxngProvider(endpoint(`${site.origin}/searxng`));
  const results = await searxng.search("what is up", { count: 5 });
  assert.deepEqual(results, [{ url: "https://one.example/", title: "One", snippet: "first", engine: "wikipedia" }]);
  assert.equal(seenHeaders.searxng?.accept, "application/json");
  const shapeless = new SearxngProvider(endpoint(`${site.origin}/shapeless`));
  await assert.rejects(shapeless.search("x", { count: 5 }), (e) => isServiceError(e) && /without a results list/.test(e.message));
});

test("the provider URL reaches the private network only when the operator allows it, and plain http only when allowed", async () => {
  const before = site.requests.length;
  const closed = new SearxngProvider(endpoint(`${site.origin}/searxng`, { allowPrivateNetwork: false }));
  await assert.rejects(closed.search("x", { count: 5 }), (e) => isServiceError(e) && e.kind === "upstream" && /non-public address\. Set webSearch\.allowPrivateNetwork/.test(e.message));
  const noHttp = new SearxngProvider(endpoint(`${site.origin}/searxng`, { allowHttp: false }));
  await assert.rejects(noHttp.search("x", { count: 5 }), (e) => isServiceError(e) && /plain http/.test(e.message));
  assert.equal(site.requests.length, before, "no request was made");
});

test("the operator's private-network allowance covers the provider's origin, not where it redirects", async () => {
  const redirecting = new SearxngProvider(endpoint(`${site.origin}/away`));
  const landingBefore = other.hits.get("/landing") ?? 0;
  await assert.rejects(
    redirecting.search("x", { count: 5 }),
    (e) => isServiceError(e) && /non-public address/.test(e.message),
  );
  assert.equal(other.hits.get("/landing") ?? 0, landingBefore);
});

test("credential headers go to their origin only, never to a redirect elsewhere", async () => {
  const { response } = await guardedGet(`${site.origin}/redirect-away`, {
    policy: { allowPrivateNetwork: true, allowHttp: true },
    originHeaders: { origin: site.origin, headers: { "x-subscription-token": "secret" } },
  });
  response.resume();
  assert.equal(response.statusCode, 200);
  assert.equal(seenHeaders.landing?.["x-subscription-token"], undefined);
});

test("a provider that does not answer in time fails with search_provider_timeout", async () => {
  const silent = new SearxngProvider(endpoint(`${site.origin}/silent`, { timeoutMs: 300 }));
  await assert.rejects(silent.search("x", { count: 5 }), (e) => isServiceError(e) && e.code === "search_provider_timeout");
});

test("config: each provider's required settings; the registry builds the named provider", () => {
  assert.equal(webSearchConfigSchema.safeParse({ provider: "searxng" }).success, false);
  assert.equal(webSearchConfigSchema.safeParse({ provider: "brave" }).success, false);
  assert.equal(webSearchConfigSchema.safeParse({ provider: "searxng", url: "file:///etc" }).success, false);
  assert.equal(webSearchConfigSchema.safeParse({ provider: "searxng", url: "http://x", trustedPageOrigins: ["http://x"] }).success, false, "no way to trust page origins from config");
  const searxng = webSearchConfigSchema.parse({ provider: "searxng", url: "http://searxng:8080" });
  assert.equal(searxng.allowPrivateNetwork, false);
  assert.equal(createWebSearchProvider(searxng).name, "searxng");
  assert.equal(createWebSearchProvider(webSearchConfigSchema.parse({ provider: "brave", apiKey: "k" })).name, "brave");
});

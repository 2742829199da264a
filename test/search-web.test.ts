/**
 * Web search end to end: a real search server process (Debian's searx 1.1.0 on loopback, its
 * json_engine pointed at a local site's JSON endpoint) → the SearXNG provider → result pages read
 * from the local site through the egress guard.
 *
 * The local site is on 127.0.0.1, which the guard refuses for result pages. The test passes its
 * exact origin as `trustedPageOrigins` (a dependency, not a config key), so only that one
 * scheme://host:port is let through; the SSRF targets below are a second server on every loopback
 * address at ANOTHER port, whose request log must stay empty: each refusal is the guard's own.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { webSearchConfigSchema, type WebSearchConfig } from "../src/search/web/config.ts";
import { createWebSearchDeps, searchWeb, type WebSearchDeps } from "../src/search/web/webSearch.ts";
import { pageWithNavigation, startLocalSite, type LocalSite } from "./support/localSite.ts";
import { searxMissing, skipWithoutSearx, startSearx, type SearxProcess } from "./support/searx.ts";

let site: LocalSite;
let secret: LocalSite;
let searx: SearxProcess | undefined;

const ORBITS = "A satellite in low Earth orbit completes a revolution in about ninety minutes, so the crew sees sixteen sunrises a day.";
const LAUNCH = "Launching eastward from near the equator gives a rocket the Earth's rotation for free, about four hundred metres per second.";
const NOTES = "Field notes: the ground station hands over to the next one every ten minutes.";

/** Result lists the local site's JSON endpoint gives searx's json_engine, by query. */
function resultsFor(query: string): Array<{ url: string; title: string; content: string }> {
  const s = secret.port;
  const legit = [
    { url: `${site.origin}/docs/orbits`, title: "Orbits explained", content: "How long an orbit takes." },
    { url: `${site.origin}/go/launch`, title: "Launch sites", content: "Why rockets launch east." },
    { url: `${site.origin}/notes.txt`, title: "Station notes", content: "Ground station hand-overs." },
  ];
  if (query === "orbital mechanics") return legit;
  if (query === "ssrf") {
    return [
      ...SSRF_TARGETS(s).map((url, i) => ({ url, title: `Tempting result ${i}`, content: "click me" })),
      legit[0]!,
    ];
  }
  return [];
}

const SSRF_TARGETS = (s: number) => [
  `http://127.0.0.1:${s}/secret/loopback`,
  `http://0.0.0.0:${s}/secret/zero`,
  `http://[::1]:${s}/secret/ipv6`,
  `http://[::ffff:127.0.0.1]:${s}/secret/mapped`,
  "http://169.254.169.254/latest/meta-data/",
  `http://2130706433:${s}/secret/decimal`,
  `http://0177.0.0.1:${s}/secret/octal`,
  `http://localhost:${s}/secret/dns-name`,
  // On the trusted origin, redirecting away: chains ending on a loopback name, address and the metadata address.
  "SITE/redirect/1",
  "SITE/redirect/to-ip",
  "SITE/redirect/to-metadata",
];

before(async () => {
  secret = await startLocalSite({}, "::"); // every path 404s, but any request at all is logged
  site = await startLocalSite({
    "/api": (_req, res, url) => {
      const results = resultsFor(url.searchParams.get("q") ?? "").map((r) => ({ ...r, url: r.url.replace("SITE", site.origin) }));
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ results }));
    },
    "/docs/orbits": (_req, res) => res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(pageWithNavigation("Orbits explained", [ORBITS])),
    "/docs/launch": (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation("Launch sites", [LAUNCH])),
    "/go/launch": (_req, res) => res.writeHead(301, { location: "/docs/launch" }).end(), // a redirect within the trusted origin is fine
    "/notes.txt": (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(NOTES),
    "/redirect/1": (_req, res) => res.writeHead(302, { location: "/redirect/2" }).end(),
    "/redirect/2": (_req, res) => res.writeHead(307, { location: `http://localhost:${secret.port}/secret/chain-end` }).end(),
    "/redirect/to-ip": (_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${secret.port}/secret/redirected` }).end(),
    "/redirect/to-metadata": (_req, res) => res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/iam" }).end(),
  });
  if (searxMissing() === null) searx = await startSearx({ engineUrl: `${site.origin}/api?q={query}` });
});

const opened: WebSearchDeps[] = [];
function open(...args: Parameters<typeof createWebSearchDeps>): WebSearchDeps {
  const deps = createWebSearchDeps(...args);
  opened.push(deps);
  return deps;
}

after(async () => {
  await Promise.all(opened.map((deps) => deps.fetcher.close()));
  await searx?.stop();
  await site?.stop();
  await secret?.stop();
});

function config(overrides: Partial<WebSearchConfig> = {}): WebSearchConfig {
  return webSearchConfigSchema.parse({
    provider: "searxng",
    url: searx!.url,
    allowPrivateNetwork: true, // the operator's SearXNG is on loopback
    allowHttp: true,
    maxResults: 20,
    pagesToRead: 3,
    cacheTtlMs: 0,
    fetchTimeoutMs: 5000,
    ...overrides,
  });
}

function capturingLogger() {
  const warns: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  return { warns, logger: { warn: (obj: object, msg: string) => void warns.push({ obj: obj as Record<string, unknown>, msg }), debug: () => {} } };
}

test("searx → SearXNG provider → result pages: main text of each page, in result order", async (t) => {
  if (!searx) return skipWithoutSearx(t);
  const { logger, warns } = capturingLogger();
  const deps = open(config(), { logger, trustedPageOrigins: [site.origin] });
  const outcome = await searchWeb(deps, "orbital mechanics");

  assert.deepEqual(
    outcome.results.map((r) => [r.url, r.title, r.snippet, r.engine]),
    [
      [`${site.origin}/docs/orbits`, "Orbits explained", "How long an orbit takes.", "localsite"],
      [`${site.origin}/go/launch`, "Launch sites", "Why rockets launch east.", "localsite"],
      [`${site.origin}/notes.txt`, "Station notes", "Ground station hand-overs.", "localsite"],
    ],
  );
  assert.deepEqual(
    outcome.pages.map((p) => [p.url, p.finalUrl, p.title]),
    [
      [`${site.origin}/docs/orbits`, `${site.origin}/docs/orbits`, "Orbits explained"],
      [`${site.origin}/go/launch`, `${site.origin}/docs/launch`, "Launch sites"],
      [`${site.origin}/notes.txt`, `${site.origin}/notes.txt`, "Station notes"], // no title in plain text: the result's
    ],
  );
  assert.match(outcome.pages[0]!.text, /sixteen sunrises a day/);
  assert.match(outcome.pages[1]!.text, /four hundred metres per second/);
  assert.equal(outcome.pages[2]!.text, NOTES);
  for (const page of outcome.pages) {
    for (const noise of ["Shopping cart", "newsletter", "All rights reserved", "analytics-snippet"]) {
      assert.ok(!page.text.includes(noise), `navigation noise "${noise}" in ${page.url}`);
    }
  }
  assert.deepEqual(outcome.refused, []);
  assert.deepEqual(outcome.failed, []);
  assert.equal(warns.length, 0);
});

test("SSRF through the search path: private, loopback, metadata, numeric forms, a private DNS name and redirect chains are all refused and logged", async (t) => {
  if (!searx) return skipWithoutSearx(t);
  const { logger, warns } = capturingLogger();
  const deps = open(config({ pagesToRead: 10 }), { logger, trustedPageOrigins: [site.origin] });
  const siteRequestsBefore = site.requests.length;
  const outcome = await searchWeb(deps, "ssrf");

  const targets = SSRF_TARGETS(secret.port).map((url) => url.replace("SITE", site.origin));
  assert.deepEqual(outcome.refused.map((r) => r.url).sort(), [...targets].sort(), "every tempting URL is refused");
  for (const refusal of outcome.refused) {
    assert.match(refusal.reason, /private, loopback or otherwise non-public address\.$/, `${refusal.url}: ${refusal.reason}`);
    assert.doesNotMatch(refusal.reason, /--allow/, "no command-line hints in a web search refusal");
    assert.ok(
      warns.some((w) => w.obj.url === refusal.url && w.obj.reason === refusal.reason),
      `a warning with the URL and the reason for ${refusal.url}`,
    );
  }
  assert.equal(warns.length, targets.length);
  assert.deepEqual(secret.requests, [], "no request reached any loopback service");

  // The chains were followed up to the refused hop (so the refusal is the redirect check's).
  const siteRequests = site.requests.slice(siteRequestsBefore);
  for (const path of ["/redirect/1", "/redirect/2", "/redirect/to-ip", "/redirect/to-metadata"]) assert.ok(siteRequests.includes(path), path);

  // The legit page is still read, and only it is left among the results.
  assert.deepEqual(outcome.pages.map((p) => p.url), [`${site.origin}/docs/orbits`]);
  assert.match(outcome.pages[0]!.text, /sixteen sunrises/);
  assert.deepEqual(outcome.results.map((r) => r.url), [`${site.origin}/docs/orbits`]);
  assert.deepEqual(outcome.failed, []);
});

test("allowPrivateNetwork is the provider's only: the pages of a search through a loopback SearXNG are still refused", async (t) => {
  if (!searx) return skipWithoutSearx(t);
  const { logger, warns } = capturingLogger();
  const deps = open(config(), { logger }); // the config allows the private network; no trusted page origin
  const pagesBefore = site.requests.filter((p) => p !== "/api").length;
  const outcome = await searchWeb(deps, "orbital mechanics");
  assert.equal(outcome.pages.length, 0);
  assert.equal(outcome.refused.length, 3);
  assert.equal(warns.length, 3);
  assert.equal(site.requests.filter((p) => p !== "/api").length, pagesBefore, "no result page was requested");
});

test("a SearXNG on loopback without allowPrivateNetwork is refused by the guard", async (t) => {
  if (!searx) return skipWithoutSearx(t);
  const { logger } = capturingLogger();
  const deps = open(config({ allowPrivateNetwork: false }), { logger, trustedPageOrigins: [site.origin] });
  await assert.rejects(searchWeb(deps, "orbital mechanics"), (e: Error & { code?: string }) => e.code === "search_provider_error" && /non-public/.test(e.message));
});

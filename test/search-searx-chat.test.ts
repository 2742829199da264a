/**
 * Search in answers with the real search server: Debian's searx 1.1.0 on loopback (its
 * json_engine pointed at a local site's JSON endpoint, test/support/searx.ts) is the one Sputnik's
 * `search.web` asks; the result pages are read from the local site through the egress guard; the
 * scripted model `scripted-cite` answers citing [1] and [2]; an official `openai` SDK client sees
 * url_citation annotations at the markers' spans, streamed and not, and the books have a `search`
 * line item for each request.
 *
 * test/search-chat.test.ts covers the same answer path with a SearXNG-shaped route (fast, counts
 * searches exactly) and test/search-web.test.ts the searx → provider → pages path on its own; this
 * file joins the two: what searx really returns is what the answer cites. One service, one searx.
 *
 * Loopback on two levels: the provider URL (searx) is the operator's, so `allowPrivateNetwork` is
 * set for it; the result pages are on 127.0.0.1 too, which the guard refuses for pages, so the
 * site's exact origin is passed as `trustedPageOrigins` (startService's option, not a config key).
 * Any other loopback URL searx returns must still be refused: a second server on ANOTHER port
 * stands behind one, and its request log must stay empty.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit } from "../src/billing/balances.ts";
import { savePlan, type Plan } from "../src/billing/plans.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { pageWithNavigation, startLocalSite, type LocalSite } from "./support/localSite.ts";
import { searxMissing, skipWithoutSearx, startSearx, type SearxProcess } from "./support/searx.ts";
import { startTestService, type TestService } from "./support/service.ts";

const ANSWER = MODEL_SCRIPTS["scripted-cite"]!.answer;
const QUESTION = "When was Sputnik 1 launched, and who flew later?";
/** A second question, for which the site's JSON puts loopback and metadata URLs first. */
const TEMPTED = "When was Sputnik 1 launched, and who flew on a later Sputnik?";

const LAUNCH = [
  "Sputnik 1 was launched on 4 October 1957 from the Baikonur Cosmodrome.",
  "The launch of Sputnik 1 began the space age; Sputnik 1 was launched on an R-7 rocket.",
];
const LAIKA = ["Laika, a dog from the streets of Moscow, flew later on Sputnik 2 in November 1957."];
const BREAD = ["Knead the dough for ten minutes and let it rise in a warm place."];

let site: LocalSite;
/** Behind the SSRF URLs: every loopback address, another port; any request at all is logged. */
let secret: LocalSite;
let searx: SearxProcess | undefined;
let service: TestService | undefined;
let user: { id: string; key: string };

/** Pages in the order searx gets them: the ranked order too (the launch page matches best, Laika's next, the bread page not at all). */
const legit = () => [
  { url: `${site.origin}/articles/launch`, title: "Sputnik 1 launch", content: "The first satellite." },
  { url: `${site.origin}/articles/laika`, title: "Laika", content: "A dog in orbit." },
  { url: `${site.origin}/articles/bread`, title: "Bread", content: "Baking at home." },
];

/** What the site's JSON endpoint gives searx's json_engine, by query. */
function resultsFor(query: string) {
  if (query === QUESTION) return legit();
  if (query === TEMPTED) {
    // Snippets that match the question better than any page: were these kept, they would be cited.
    const bait = "Sputnik 1 launched when? Who flew later? Sputnik 1 was launched in 1957 and flew later.";
    return [
      { url: `http://127.0.0.1:${secret.port}/internal/admin`, title: "Sputnik 1 launched — who flew later", content: bait },
      { url: "http://169.254.169.254/latest/meta-data/", title: "When was Sputnik 1 launched", content: bait },
      ...legit(),
    ];
  }
  return [];
}

const html = (title: string, paragraphs: string[]) => (_req: unknown, res: import("node:http").ServerResponse) =>
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(pageWithNavigation(title, paragraphs));

const SEARCHER: Plan = {
  id: "searx-searcher",
  name: "Searx searcher",
  billed: true,
  allowedModels: null,
  dailyTokenQuota: null,
  monthlyTokenQuota: null,
  maxThinkingBudget: null,
  concurrencyWeight: 1,
  features: ["search"],
};

before(async () => {
  secret = await startLocalSite({}, "::");
  site = await startLocalSite({
    "/api": (_req, res, url) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ results: resultsFor(url.searchParams.get("q") ?? "") })),
    "/articles/launch": html("Sputnik 1 launch", LAUNCH),
    "/articles/laika": html("Laika", LAIKA),
    "/articles/bread": html("Bread", BREAD),
  });
  if (searxMissing() !== null) return; // each test skips loudly (or fails under SPUTNIK_REQUIRE_SERVICES=1)
  searx = await startSearx({ engineUrl: `${site.origin}/api?q={query}` });
  service = await startTestService({
    models: ["scripted-cite"],
    config: {
      contextSize: 8192, // passages make prompts long, and the scripted tokenizer spells unknown words byte by byte
      limits: { maxConcurrentPerKey: 0, maxConcurrentPerIp: 0 },
      search: { web: { provider: "searxng", url: searx.url, allowPrivateNetwork: true, allowHttp: true, pagesToRead: 3, cacheTtlMs: 0, fetchTimeoutMs: 5000 } },
    },
    start: { trustedPageOrigins: [site.origin] },
  });
  const db = service.store.db;
  await savePlan(db, SEARCHER);
  const row = await insertUser(db, { username: "searxuser", email: null, passwordHash: "unused", role: "user", status: "active", planId: SEARCHER.id });
  const { key } = await createApiKey(db, { userId: row.id, name: "test", models: null, expiresAt: null });
  await addCredit(db, { userId: row.id, kind: "topped_up", amountMicros: 10_000_000, source: "admin" });
  user = { id: row.id, key };
});

after(async () => {
  await service?.stop();
  await searx?.stop();
  await site?.stop();
  await secret?.stop();
});

const client = () => new OpenAI({ baseURL: `${service!.url}/v1`, apiKey: user.key, maxRetries: 0 });

/** Pages the site served (its JSON endpoint aside). */
const pagesServed = () => site.requests.filter((p) => p.startsWith("/articles/"));
const searxAsked = () => site.hits.get("/api") ?? 0;

const EXPECTED = () => [
  { type: "url_citation", url_citation: { url: `${site.origin}/articles/launch`, title: "Sputnik 1 launch", start_index: 23, end_index: 26 } },
  { type: "url_citation", url_citation: { url: `${site.origin}/articles/laika`, title: "Laika", start_index: 57, end_index: 60 } },
];

/** The marker each annotation's span covers in `content` (code points). */
function spans(content: string, annotations: Array<{ url_citation: { start_index: number; end_index: number } }>): string[] {
  const chars = Array.from(content);
  return annotations.map((a) => chars.slice(a.url_citation.start_index, a.url_citation.end_index).join(""));
}

/** The user's ledger rows, oldest first, each with its `search` line items. */
async function searchItems(): Promise<Array<{ status: string; items: Array<{ quantity: number }> }>> {
  const db = service!.store.db;
  const rows = await db.selectFrom("usage_ledger").selectAll().where("user_id", "=", user.id).orderBy("started_at").execute();
  const items = rows.length === 0 ? [] : await db.selectFrom("ledger_items").selectAll().where("entry_id", "in", rows.map((r) => r.id)).where("meter", "=", "search").execute();
  return rows.map((row) => ({ status: row.status, items: items.filter((i) => i.entry_id === row.id).map((i) => ({ quantity: i.quantity })) }));
}

test("searx's results, read and cited: url_citation annotations on the [n] markers, through the openai SDK; a `search` ledger item", async (t) => {
  if (!service) return skipWithoutSearx(t);
  const askedBefore = searxAsked();
  const servedBefore = pagesServed().length;
  const completion = await client().chat.completions.create({
    model: "scripted-cite",
    max_tokens: 256,
    messages: [{ role: "user", content: QUESTION }],
    web_search_options: {},
  });
  const message = completion.choices[0]!.message;
  assert.equal(message.content, ANSWER);
  assert.deepEqual(message.annotations, EXPECTED(), "[1] is searx's first result (the best match), [2] its second; the bread page is not cited");
  assert.deepEqual(spans(message.content!, message.annotations!), ["[1]", "[2]"]);
  assert.equal(searxAsked() - askedBefore, 1, "searx asked the site once: the answer came from a real searx search");
  assert.deepEqual(pagesServed().slice(servedBefore).sort(), ["/articles/bread", "/articles/laika", "/articles/launch"], "all three result pages were read");
  assert.ok(completion.usage!.prompt_tokens > 100, `the passages are prompt tokens: ${completion.usage!.prompt_tokens}`);

  const ledger = await searchItems();
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0]!.status, "completed");
  assert.deepEqual(ledger[0]!.items, [{ quantity: 1 }], "one `search` line item for the request");
});

test("streamed through the openai SDK: the same text, the annotations on a chunk of their own before the finish", async (t) => {
  if (!service) return skipWithoutSearx(t);
  const stream = await client().chat.completions.create({
    model: "scripted-cite",
    max_tokens: 256,
    messages: [{ role: "user", content: QUESTION }],
    web_search_options: { search_context_size: "low" },
    stream: true,
  });
  let content = "";
  const annotated: unknown[] = [];
  let finishedAt = -1;
  let index = 0;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? "";
    const annotations = (choice.delta as { annotations?: unknown[] }).annotations;
    if (annotations) annotated.push({ index, annotations });
    if (choice.finish_reason) finishedAt = index;
    index++;
  }
  assert.equal(content, ANSWER);
  assert.equal(annotated.length, 1, "one chunk carries the annotations");
  const [{ index: at, annotations }] = annotated as Array<{ index: number; annotations: unknown }>;
  assert.deepEqual(annotations, EXPECTED());
  assert.ok(finishedAt > at, "the annotations come before the finish chunk");

  const ledger = await searchItems();
  assert.equal(ledger.length, 2);
  assert.deepEqual(ledger[1]!.items, [{ quantity: 1 }]);
});

test("searx returns a loopback service and the metadata address first: refused (never requested) and not cited", async (t) => {
  if (!service) return skipWithoutSearx(t);
  const completion = await client().chat.completions.create({
    model: "scripted-cite",
    max_tokens: 256,
    messages: [{ role: "user", content: TEMPTED }],
    web_search_options: {},
  });
  const message = completion.choices[0]!.message;
  assert.equal(message.content, ANSWER);
  assert.deepEqual(message.annotations, EXPECTED(), "only the local site's pages are cited: the refused results' snippets are dropped too");
  for (const a of message.annotations!) {
    assert.doesNotMatch(a.url_citation.url, /169\.254\.169\.254|:\d+\/internal/);
  }
  assert.deepEqual(secret.requests, [], "the loopback service on the other port saw zero requests");
  const ledger = await searchItems();
  assert.equal(ledger.length, 3);
  assert.deepEqual(ledger[2]!.items, [{ quantity: 1 }], "a search with refusals is still one search");
});

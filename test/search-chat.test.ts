/**
 * Search in answers, end to end through a real server: a question with `web_search_options` (API)
 * or `search: true` (web app) is searched on a SearXNG-shaped server, the result pages are read
 * from a local site through the egress guard, the scripted model `scripted-cite` answers citing
 * [1] and [2], and the answer carries OpenAI `url_citation` annotations at the markers' spans
 * (streamed and not). Each search is a ledger line item priced from the price book; plans without
 * `search` get 403 before anything is searched; the daily search quota answers 429 with its reset
 * time; documents (uploaded through /v1/files) are cited as `file_citation`, others' are 404.
 *
 * Which search server: a local HTTP route that answers SearXNG's JSON format (`/search?q=…&format=json`
 * → `{results: [{url, title, content, engine}]}`). test/search-web.test.ts runs the real searx
 * process; here the point is the answer, the citations and the books, and a route that counts its
 * hits tells exactly how many searches ran — in milliseconds, with nothing to install.
 */
import assert from "node:assert/strict";
import { formatMicros } from "../src/billing/money.ts";
import { after, before, test, type TestContext } from "node:test";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit, availableMicros, getBalance } from "../src/billing/balances.ts";
import { savePlan, type Plan } from "../src/billing/plans.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { pageWithNavigation, startLocalSite, type LocalSite } from "./support/localSite.ts";
import { startTestService, type TestService } from "./support/service.ts";
import { postgresUrlOrSkip } from "./support/services.ts";
import pg from "pg";
import { randomBytes } from "node:crypto";

const ANSWER = MODEL_SCRIPTS["scripted-cite"]!.answer;
const QUESTION = "When was Sputnik 1 launched, and who flew later?";
/** billing.searchPriceMicros: what one search costs (the price book's configured default). */
const SEARCH_PRICE = 5_000;

const LAUNCH = [
  "Sputnik 1 was launched on 4 October 1957 from the Baikonur Cosmodrome.",
  "The launch of Sputnik 1 began the space age and the space race.",
];
const LAIKA = ["Laika, a dog from the streets of Moscow, flew on Sputnik 2 in November 1957."];
const BREAD = ["Knead the dough for ten minutes and let it rise in a warm place."];

let site: LocalSite;
let service: TestService;

/** What the SearXNG-shaped route answers for every query: the two pages about the question and one that is not. */
function searxResults() {
  return {
    query: "",
    results: [
      { url: `${site.origin}/launch`, title: "Sputnik 1 launch", content: "The first satellite.", engine: "local" },
      { url: `${site.origin}/laika`, title: "Laika", content: "A dog in orbit.", engine: "local" },
      { url: `${site.origin}/bread`, title: "Bread", content: "Baking at home.", engine: "local" },
    ],
  };
}

async function startSearchService(extra: Record<string, unknown> = {}): Promise<TestService> {
  return startTestService({
    models: ["scripted-cite", "embed"],
    config: {
      // Passages make prompts long, and the scripted tokenizer spells unknown words byte by byte.
      contextSize: 8192,
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      limits: { maxConcurrentPerKey: 0, maxConcurrentPerIp: 0 },
      billing: { searchPriceMicros: SEARCH_PRICE },
      localEngine: { models: { embed: { embeddings: true } } },
      // Semantic retrieval beside the words index: documents' passages are embedded by the served `embed` model.
      search: { embeddingModel: "embed", web: { provider: "searxng", url: site.origin, allowPrivateNetwork: true, allowHttp: true, pagesToRead: 3, cacheTtlMs: 0 } },
      ...extra,
    },
    start: { trustedPageOrigins: [site.origin] },
  });
}

before(async () => {
  site = await startLocalSite({
    "/search": (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(searxResults())),
    "/launch": (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation("Sputnik 1 launch", LAUNCH)),
    "/laika": (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation("Laika", LAIKA)),
    "/bread": (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation("Bread", BREAD)),
  });
  service = await startSearchService();
});
after(async () => {
  await service?.stop();
  await site?.stop();
});

const SEARCHER: Plan = {
  id: "searcher",
  name: "Searcher",
  billed: true,
  allowedModels: null,
  dailyTokenQuota: null,
  monthlyTokenQuota: null,
  maxThinkingBudget: null,
  concurrencyWeight: 1,
  features: ["search", "documents"],
};

let users = 0;
/** A fresh account on `plan` (saved first) with an API key and $10 of credit. */
async function userOn(svc: TestService, plan: Plan): Promise<{ id: string; key: string }> {
  const db = svc.store.db;
  await savePlan(db, plan);
  const user = await insertUser(db, { username: `searcher${++users}`, email: null, passwordHash: "unused", role: "user", status: "active", planId: plan.id });
  const { key } = await createApiKey(db, { userId: user.id, name: "test", models: null, expiresAt: null });
  await addCredit(db, { userId: user.id, kind: "topped_up", amountMicros: 10_000_000, source: "admin" });
  return { id: user.id, key };
}

async function chat(svc: TestService, key: string, body: object) {
  const response = await fetch(`${svc.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "scripted-cite", max_tokens: 256, ...body }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text.startsWith("{") ? (JSON.parse(text) as any) : null };
}

/** The JSON chunks of an SSE body, without [DONE]. */
function sseChunks(text: string): any[] {
  return text
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice("data: ".length)));
}

const searches = () => site.hits.get("/search") ?? 0;
const tokenizations = () => service.router.stats().find((s) => s.model === "scripted-cite")!.promptTokenizations;

/** The marker spans of `annotations` sliced out of `content` (code points). */
function spans(content: string, annotations: any[]): string[] {
  const chars = Array.from(content);
  return annotations.map((a) => {
    const c = a.url_citation ?? a.file_citation;
    return chars.slice(c.start_index, c.end_index).join("");
  });
}

const EXPECTED_WEB = () => [
  { type: "url_citation", url_citation: { url: `${site.origin}/launch`, title: "Sputnik 1 launch", start_index: 23, end_index: 26 } },
  { type: "url_citation", url_citation: { url: `${site.origin}/laika`, title: "Laika", start_index: 57, end_index: 60 } },
];

/** The user's settled ledger rows with their line items. */
async function ledgerOf(svc: TestService, userId: string) {
  const db = svc.store.db;
  const rows = await db.selectFrom("usage_ledger").selectAll().where("user_id", "=", userId).orderBy("started_at").execute();
  const items = rows.length === 0 ? [] : await db.selectFrom("ledger_items").selectAll().where("entry_id", "in", rows.map((r) => r.id)).execute();
  return rows.map((row) => ({ row, items: items.filter((i) => i.entry_id === row.id) }));
}

test("API: web_search_options grounds the answer in the pages read; url_citation annotations point at them, at the markers", async () => {
  const user = await userOn(service, SEARCHER);
  const before = searches();
  const plain = await chat(service, user.key, { messages: [{ role: "user", content: QUESTION }] });
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.body.choices[0].message.annotations, undefined, "no search, no annotations");
  assert.equal(searches(), before, "no search without web_search_options");

  const tokenizedBefore = tokenizations();
  const searched = await chat(service, user.key, { messages: [{ role: "user", content: QUESTION }], web_search_options: {} });
  assert.equal(searched.status, 200, searched.text);
  assert.equal(tokenizations() - tokenizedBefore, 1, "the prompt with the passages is tokenized once");
  const message = searched.body.choices[0].message;
  assert.equal(message.content, ANSWER);
  assert.deepEqual(message.annotations, EXPECTED_WEB(), "[1] is the launch page (best match), [2] Laika's; the bread page is not a source");
  assert.deepEqual(spans(message.content, message.annotations), ["[1]", "[2]"]);
  assert.equal(searches(), before + 1, "one search");
  // The pages' passages are in the prompt: they count as prompt tokens like any other.
  assert.ok(searched.body.usage.prompt_tokens > plain.body.usage.prompt_tokens + 100, `${searched.body.usage.prompt_tokens} vs ${plain.body.usage.prompt_tokens}`);

  // Streamed: the same text, and the same annotations on a chunk of their own before the finish chunk.
  const streamed = await chat(service, user.key, { messages: [{ role: "user", content: QUESTION }], web_search_options: { search_context_size: "low" }, stream: true });
  assert.equal(streamed.status, 200, streamed.text);
  const chunks = sseChunks(streamed.text);
  const content = chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
  assert.equal(content, ANSWER);
  const withAnnotations = chunks.filter((c) => c.choices?.[0]?.delta?.annotations);
  assert.equal(withAnnotations.length, 1);
  assert.deepEqual(withAnnotations[0].choices[0].delta.annotations, EXPECTED_WEB());
  const last = chunks.at(-1);
  assert.equal(last.choices[0].finish_reason, "stop");
  assert.ok(chunks.indexOf(withAnnotations[0]) < chunks.indexOf(last));
  assert.equal(searches(), before + 2);

  // The books: one `search` line item per search, at the price book's price; the balance shows it.
  const ledger = await ledgerOf(service, user.id);
  assert.equal(ledger.length, 3);
  const searchItems = ledger.map((e) => e.items.filter((i) => i.meter === "search"));
  assert.deepEqual(
    searchItems.map((items) => items.map((i) => [i.quantity, i.unit_price_micros, i.per, i.amount_micros])),
    [[], [[1, SEARCH_PRICE, 1, SEARCH_PRICE]], [[1, SEARCH_PRICE, 1, SEARCH_PRICE]]],
  );
  for (const { row, items } of ledger) {
    assert.equal(row.status, "completed");
    assert.equal(row.cost_micros, items.reduce((sum, i) => sum + i.amount_micros, 0));
    assert.equal(row.charged_micros, row.cost_micros);
  }
  const charged = ledger.reduce((sum, e) => sum + e.row.charged_micros, 0);
  const balance = await getBalance(service.store.db, user.id);
  assert.equal(availableMicros(balance), 10_000_000 - charged);
  const shown = await fetch(`${service.url}/v1/user/balance`, { headers: { authorization: `Bearer ${user.key}` } });
  const info = ((await shown.json()) as any).balance_infos[0];
  assert.equal(Math.round(Number(info.total_balance) * 1_000_000), 10_000_000 - charged);

  // The user's search history has both searches.
  const history = await service.store.db.selectFrom("searches").selectAll().where("user_id", "=", user.id).execute();
  assert.deepEqual(
    history.map((h) => [h.kind, h.query, h.results]),
    [
      ["web", QUESTION, 3],
      ["web", QUESTION, 3],
    ],
  );
});

test("API: bad web_search_options and file_ids are 400 naming the parameter, before any search", async () => {
  const user = await userOn(service, SEARCHER);
  const before = searches();
  for (const [body, param] of [
    [{ web_search_options: "yes" }, "web_search_options"],
    [{ web_search_options: { search_context_size: "huge" } }, "web_search_options.search_context_size"],
    [{ file_ids: "file-1" }, "file_ids"],
    [{ file_ids: Array.from({ length: 21 }, (_, i) => `file-${i}`) }, "file_ids"],
  ] as const) {
    const res = await chat(service, user.key, { messages: [{ role: "user", content: QUESTION }], ...body });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.param, param);
  }
  assert.equal(searches(), before);
});

/** Plans decide: no `search` → 403 and nothing searched; a daily quota → 429 with its reset time, and the books match the searches run. */
async function plansAndQuotas(svc: TestService): Promise<void> {
  const without = await userOn(svc, { ...SEARCHER, id: "chat-only", name: "Chat only", features: [] });
  let before = searches();
  const refused = await chat(svc, without.key, { messages: [{ role: "user", content: QUESTION }], web_search_options: {} });
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.body.error.code, "feature_not_allowed");
  assert.match(refused.body.error.message, /does not include search/);
  assert.equal(searches(), before, "a plan without search never triggers one");
  assert.equal((await ledgerOf(svc, without.id)).length, 0);
  // Documents are a feature of their own.
  const noDocs = await chat(svc, without.key, { messages: [{ role: "user", content: QUESTION }], file_ids: ["file-whatever"] });
  assert.equal(noDocs.status, 403, noDocs.text);
  assert.match(noDocs.body.error.message, /does not include documents/);
  // Without search the same plan chats as before.
  assert.equal((await chat(svc, without.key, { messages: [{ role: "user", content: QUESTION }] })).status, 200);

  const limited = await userOn(svc, { ...SEARCHER, id: "two-a-day", name: "Two a day", dailySearchQuota: 2 });
  before = searches();
  for (let i = 0; i < 2; i++) {
    const ok = await chat(svc, limited.key, { messages: [{ role: "user", content: QUESTION }], web_search_options: {} });
    assert.equal(ok.status, 200, ok.text);
  }
  const over = await chat(svc, limited.key, { messages: [{ role: "user", content: QUESTION }], web_search_options: {} });
  assert.equal(over.status, 429, over.text);
  assert.equal(over.body.error.code, "quota_exceeded");
  assert.match(over.body.error.message, /daily search quota \(2 searches\) is used up; it resets at \d{4}-\d\d-\d\dT/);
  const reset = over.headers.get("x-quota-reset");
  assert.ok(reset && Date.parse(reset) > Date.now(), `x-quota-reset ${reset}`);
  assert.ok(Number(over.headers.get("retry-after")) >= 1);
  assert.equal(searches(), before + 2, "the refused request searched nothing");
  // Asking without search still works: the quota is of searches.
  assert.equal((await chat(svc, limited.key, { messages: [{ role: "user", content: QUESTION }] })).status, 200);
  const ledger = await ledgerOf(svc, limited.id);
  const searchItems = ledger.flatMap((e) => e.items.filter((i) => i.meter === "search"));
  assert.equal(searchItems.length, 2, "a ledger line item per search run");
  assert.ok(searchItems.every((i) => i.quantity === 1 && i.amount_micros === SEARCH_PRICE));
}

test("plans: without `search` 403 and no search; the daily search quota 429 with reset; ledger rows match the searches [sqlite]", async () => {
  await plansAndQuotas(service);
});

test("plans: the same on PostgreSQL [postgres]", async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (!url) return;
  const schema = `test_${randomBytes(8).toString("hex")}`;
  const pgService = await startSearchService({ databaseUrl: url, database: { schema } });
  t.after(async () => {
    await pgService.stop();
    await dropSchema(url, schema);
  });
  assert.equal(pgService.store.dialect, "postgres");
  await plansAndQuotas(pgService);
});

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

const NOTES = [
  "# Mission notes",
  "The ground station at Tyuratam tracked Sputnik 1 for twenty-one days, until its batteries ran out.",
  "# Lunch",
  "The canteen served cabbage soup on Tuesdays.",
].join("\n\n");

/** Uploads `text` as a markdown file through /v1/files and waits until it is indexed. */
async function upload(svc: TestService, key: string, filename: string, text: string): Promise<string> {
  const form = new FormData();
  form.set("purpose", "assistants");
  form.set("file", new Blob([text], { type: "text/markdown" }), filename);
  const res = await fetch(`${svc.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
  const body = (await res.json()) as any;
  assert.equal(res.status, 200, JSON.stringify(body));
  for (let i = 0; i < 200; i++) {
    const state = (await (await fetch(`${svc.url}/v1/files/${body.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as any;
    if (state.status === "processed") return body.id;
    assert.notEqual(state.status, "error", JSON.stringify(state));
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the file was not indexed in time");
}

test("documents: a question with file_ids cites the file (file_citation); another user's file is 404 and nothing is read", async () => {
  const owner = await userOn(service, SEARCHER);
  const fileId = await upload(service, owner.key, "notes.md", NOTES);
  const before = searches();
  const res = await chat(service, owner.key, { messages: [{ role: "user", content: "How long did the ground station track Sputnik 1?" }], file_ids: [fileId] });
  assert.equal(res.status, 200, res.text);
  const message = res.body.choices[0].message;
  assert.equal(message.content, ANSWER);
  // One source (the file): [1] cites it, [2] names no source and stays text.
  assert.deepEqual(message.annotations, [
    { type: "file_citation", file_citation: { file_id: fileId, filename: "notes.md", title: "notes.md — Mission notes", start_index: 23, end_index: 26 } },
  ]);
  assert.equal(searches(), before, "documents only: no web search");
  const [entry] = (await ledgerOf(service, owner.id)).slice(-1);
  assert.deepEqual(
    entry!.items.filter((i) => i.meter === "documents" || i.meter === "search").map((i) => [i.meter, i.quantity]),
    [["documents", 1]],
  );

  const other = await userOn(service, SEARCHER);
  const stolen = await chat(service, other.key, { messages: [{ role: "user", content: "What is in it?" }], file_ids: [fileId] });
  assert.equal(stolen.status, 404, stolen.text);
  assert.equal(stolen.body.error.param, "file_ids");
  assert.equal((await ledgerOf(service, other.id)).length, 0);
});

test("web app: `search: true` sends the sources after `start` and before the reasoning; they are stored with the answer", async () => {
  const client = new AppClient(service.url);
  const username = `webuser${++users}`;
  const signup = await client.post("/api/auth/signup", { username, password: TEST_PASSWORD });
  assert.equal(signup.status, 201, signup.text);
  await savePlan(service.store.db, SEARCHER);
  await service.store.db.updateTable("users").set({ plan_id: SEARCHER.id }).where("username", "=", username).execute();
  const user = await service.store.db.selectFrom("users").select("id").where("username", "=", username).executeTakeFirstOrThrow();
  await addCredit(service.store.db, { userId: user.id, kind: "topped_up", amountMicros: 10_000_000, source: "admin" });

  const conversation = (await client.post("/api/conversations", { model: "scripted-cite" })).body;
  const before = searches();
  const reply = await client.post(`/api/conversations/${conversation.id}/messages`, { content: QUESTION, model: "scripted-cite", search: true });
  assert.equal(reply.status, 200, reply.text);
  const events = reply.text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)));
  const types = events.map((e) => e.type);
  const at = (type: string) => types.indexOf(type);
  assert.ok(at("start") < at("sources") && at("sources") < at("reasoning"), types.join(","));
  const sources = events[at("sources")];
  assert.deepEqual(sources.searched, { query: QUESTION, pages: 3, documents: 0, indexing: false });
  assert.deepEqual(
    sources.sources.map((s: any) => [s.index, s.kind, s.url, s.title]),
    [
      [1, "web", `${site.origin}/launch`, "Sputnik 1 launch"],
      [2, "web", `${site.origin}/laika`, "Laika"],
    ],
  );
  assert.match(sources.sources[0].snippet, /launched on 4 October 1957/);
  assert.ok(!("file_id" in sources.sources[0]));
  const done = events[at("done")];
  assert.equal(done.message.content, ANSWER);
  assert.deepEqual(done.message.sources, sources.sources);
  assert.equal(searches(), before + 1);

  // After a reload: the stored answer has its sources.
  const stored = (await client.get(`/api/conversations/${conversation.id}`)).body;
  const answer = stored.messages.find((m: any) => m.role === "assistant");
  assert.deepEqual(answer.sources, sources.sources);
  const question = stored.messages.find((m: any) => m.role === "user");
  assert.equal(question.content, QUESTION, "the stored question is what the user wrote, not the prompt with passages");
  assert.equal(question.sources, null);
  // The usage page's rows and its CSV show the search and what it cost.
  const usage = await client.get("/api/billing/usage");
  assert.deepEqual(usage.body.data[0].items.filter((i: any) => i.meter === "search").map((i: any) => [i.quantity, i.amount_micros]), [[1, SEARCH_PRICE]]);
  const csv = (await client.get("/api/billing/usage.csv")).text.trim().split("\r\n").map((line) => line.split(","));
  const [header, line] = [csv[0]!, csv[1]!];
  assert.equal(line[header.indexOf("searches")], "1");
  assert.equal(line[header.indexOf("search_cost")], formatMicros(SEARCH_PRICE));
  // The search history links the answer; it is the user's alone.
  const history = await client.get("/api/searches");
  assert.equal(history.status, 200, history.text);
  assert.equal(history.body.data.length, 1);
  const [row] = history.body.data;
  assert.deepEqual([row.kind, row.query, row.results, row.conversation_id, row.message_id], ["web", QUESTION, 3, conversation.id, answer.id]);
  const other = new AppClient(service.url);
  assert.equal((await other.post("/api/auth/signup", { username: `webuser${++users}`, password: TEST_PASSWORD })).status, 201);
  assert.deepEqual((await other.get("/api/searches")).body.data, []);
  const stolen = await other.delete(`/api/searches/${row.id}`);
  assert.equal(stolen.status, 404, stolen.text);
  assert.equal((await client.delete(`/api/searches/${row.id}`)).status, 204);
  assert.deepEqual((await client.get("/api/searches")).body.data, []);
});

test("semantic: passages are embedded at indexing by the served model; a question the words index cannot match finds its passage by vector", async () => {
  const owner = await userOn(service, SEARCHER);
  // The second section has no word the lexical index keeps: only its vector can find it. Without
  // semantic retrieval the answer would read the file's first passage (Mission notes) instead.
  const odd = "?! ... !? ...";
  const fileId = await upload(service, owner.key, "odd.md", `# Mission notes\n\nThe ground station at Tyuratam tracked Sputnik 1.\n\n# ~~~\n\n${odd}`);
  const db = service.store.db;
  const chunks = await db.selectFrom("file_chunks").select(["id", "text"]).where("file_id", "=", fileId).orderBy("ordinal").execute();
  assert.equal(chunks.length, 2);
  // Embedding follows indexing in the background: wait for one vector per passage, made by `embed`.
  let vectors: { model: string; dims: number }[] = [];
  for (let i = 0; i < 200 && vectors.length < chunks.length; i++) {
    vectors = await db.selectFrom("file_chunk_vectors").select(["model", "dims"]).where("file_id", "=", fileId).execute();
    if (vectors.length < chunks.length) await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(vectors, chunks.map(() => ({ model: "embed", dims: 64 })));

  const res = await chat(service, owner.key, { messages: [{ role: "user", content: chunks[1]!.text }], file_ids: [fileId] });
  assert.equal(res.status, 200, res.text);
  const cited = res.body.choices[0].message.annotations.map((a: any) => a.file_citation?.title);
  assert.equal(cited[0], "odd.md — ~~~", JSON.stringify(res.body.choices[0].message.annotations));
});

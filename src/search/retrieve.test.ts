import assert from "node:assert/strict";
import { test } from "node:test";
import type { Actor } from "../auth/actor.ts";
import type { ModelInfo } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import { forEachDatabase } from "../../test/support/databases.ts";
import { insertUser } from "../auth/users.ts";
import { chunkText } from "./documents/chunk.ts";
import { passageBudgetChars, SearchRetriever } from "./retrieve.ts";
import { insertChunks } from "./store/chunks.ts";
import { createFile, setChunksTotal } from "./store/files.ts";
import type { WebSearchOutcome } from "./web/webSearch.ts";

const MODEL: ModelInfo = { id: "m", engine: "local", ownedBy: "test", reasoning: true, contextLength: 8192 };
const QUESTION = "When was Sputnik 1 launched?";
const signal = new AbortController().signal;

const WEB: WebSearchOutcome = {
  results: [
    { url: "https://a.test/launch", title: "Launch", snippet: "The first satellite." },
    { url: "https://b.test/bread", title: "Bread", snippet: "Baking." },
    { url: "https://c.test/unread", title: "Unread", snippet: "Sputnik 1 launched from Baikonur, this snippet says." },
  ],
  pages: [
    { url: "https://a.test/launch", finalUrl: "https://a.test/launch", title: "Launch", text: "# Launch\n\nSputnik 1 was launched on 4 October 1957." },
    { url: "https://b.test/bread", finalUrl: "https://b.test/bread", title: "Bread", text: "Knead the dough and let it rise." },
  ],
  refused: [],
  failed: [],
};

const user = (userId: string): Actor => ({ kind: "user", userId, role: "user", apiKeyId: null, sessionId: null, planId: null });

forEachDatabase("retrieval: documents being indexed are searched as far as indexed; web pages and snippets ranked; sources numbered; passages in the prompt", async (store) => {
  const owner = await insertUser(store.db, { username: "owner", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  const other = await insertUser(store.db, { username: "other", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  const text = "# Notes\n\nThe ground station tracked Sputnik 1 for twenty-one days after it was launched.\n\n# Later\n\nMore to come.";
  const file = await createFile(store.db, { userId: owner.id, filename: "notes.md", mime: "text/markdown", purpose: "assistants", content: new TextEncoder().encode(text) });
  const chunks = chunkText(text);
  await setChunksTotal(store.db, file.id, chunks.length + 5);
  await insertChunks(store.db, file.id, owner.id, chunks);
  let asked: string | null = null;
  const retriever = new SearchRetriever({
    db: store.db,
    dialect: store.dialect,
    web: async (query) => {
      asked = query;
      return WEB;
    },
  });
  const generation = { model: "m", messages: [{ role: "system" as const, content: "Be brief." }, { role: "user" as const, content: QUESTION }] };
  const found = await retriever.retrieve({ actor: user(owner.id), request: { web: true, fileIds: [file.id] }, generation, model: MODEL, signal });

  assert.equal(asked, QUESTION);
  assert.deepEqual(found.searched, { query: QUESTION, pages: 2, documents: 1, indexing: true });
  assert.deepEqual(found.items, [
    { meter: "documents", quantity: 1 },
    { meter: "search", quantity: 1 },
  ]);
  // Two sources that match the question (the bread page shares no word with it and is left out).
  assert.deepEqual(
    found.sources.map((s) => [s.index, s.kind, s.url ?? s.fileId]).sort((a, b) => Number(a[0]) - Number(b[0])),
    found.sources.map((s, i) => [i + 1, s.kind, s.url ?? s.fileId]),
  );
  const keys = found.sources.map((s) => s.url ?? s.fileId);
  assert.ok(keys.includes(file.id) && keys.includes("https://a.test/launch") && keys.includes("https://c.test/unread"), keys.join(" "));
  assert.ok(!keys.includes("https://b.test/bread"));
  const fileSource = found.sources.find((s) => s.kind === "file")!;
  assert.equal(fileSource.filename, "notes.md");
  assert.equal(text.slice(fileSource.start, fileSource.end).includes("twenty-one days"), true, "offsets point into the extracted text");

  // The prompt: the system message untouched, the question last with the numbered passages before it.
  assert.equal(found.messages.length, 2);
  assert.deepEqual(found.messages[0], generation.messages[0]);
  const prompt = found.messages[1]!.content;
  assert.match(prompt, /square brackets, like \[1\]/);
  assert.match(prompt, /still being indexed/);
  for (const s of found.sources) assert.ok(prompt.includes(`[${s.index}] ${s.title}`), prompt);
  assert.ok(prompt.endsWith(`Question: ${QUESTION}`));
  assert.equal(generation.messages[1]!.content, QUESTION, "the request's own messages are not changed");
  assert.deepEqual(
    found.queries.map((q) => q.kind),
    ["documents", "web"],
  );

  // Another user's file: 404 naming file_ids, and no search at all.
  asked = null;
  await assert.rejects(
    retriever.retrieve({ actor: user(other.id), request: { web: true, fileIds: [file.id] }, generation, model: MODEL, signal }),
    (e: unknown) => e instanceof ServiceError && e.kind === "not_found" && e.param === "file_ids",
  );
  assert.equal(asked, null);
});

forEachDatabase("retrieval: a context with no room takes no passages; web search unconfigured is refused", async (store) => {
  const retriever = new SearchRetriever({ db: store.db, dialect: store.dialect, web: async () => WEB });
  const generation = { model: "m", messages: [{ role: "user" as const, content: QUESTION }] };
  const tiny = await retriever.retrieve({ actor: user("u"), request: { web: true, fileIds: [] }, generation, model: { ...MODEL, contextLength: 300 }, signal });
  assert.deepEqual(tiny.sources, []);
  assert.match(tiny.messages[0]!.content, /found nothing relevant/);
  const bare = new SearchRetriever({ db: store.db, dialect: store.dialect });
  await assert.rejects(
    bare.retrieve({ actor: user("u"), request: { web: true, fileIds: [] }, generation, model: MODEL, signal }),
    (e: unknown) => e instanceof ServiceError && e.code === "web_search_unavailable" && e.param === "web_search_options",
  );
});

test("the passage budget: context less output less prompt, capped by search_context_size", () => {
  const generation = { model: "m", messages: [{ role: "user" as const, content: "x".repeat(300) }] };
  const low = passageBudgetChars(MODEL, generation, { contextSize: "low" }, 3);
  const high = passageBudgetChars(MODEL, generation, { contextSize: "high" }, 3);
  assert.equal(low, 1024 * 3);
  assert.ok(high > low && high < 8192 * 3);
  // max_tokens leaves less room; a context smaller than the output leaves none.
  assert.ok(passageBudgetChars(MODEL, { ...generation, maxTokens: 7000 }, { contextSize: "high" }, 3) < high);
  assert.equal(passageBudgetChars({ ...MODEL, contextLength: 1000 }, { ...generation, maxTokens: 1000 }, {}, 3), 0);
});

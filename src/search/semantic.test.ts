/**
 * Semantic and hybrid retrieval with real parts: the generated "embed" model in llama.cpp's
 * embedding context (random weights: the vectors mean nothing, but the same text always gives the
 * same vector), the real vector index, on SQLite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pino from "pino";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import type { Actor } from "../auth/actor.ts";
import { insertUser } from "../auth/users.ts";
import { LocalEngine } from "../engines/local/localEngine.ts";
import { LocalModel } from "../engines/local/localModel.ts";
import { ModelRouter } from "../engines/router.ts";
import type { ModelInfo } from "../engines/types.ts";
import { ensureModel } from "../gguf/catalog.ts";
import { FileIndexer } from "./files/indexer.ts";
import { SearchRetriever } from "./retrieve.ts";
import { createSemanticSearch, routerEmbedder, SemanticSearch, type EmbedTexts } from "./semantic.ts";
import { isServiceError } from "../errors.ts";
import { insertChunks, searchChunks } from "./store/chunks.ts";
import { createFile, deleteFile, getFile, markIndexed } from "./store/files.ts";
import { countFileVectors } from "./store/vectors.ts";

let model: LocalModel;
let embed: EmbedTexts;
before(async () => {
  model = await LocalModel.load({ id: "embed", path: await ensureModel("embed"), threads: 1, parallel: 1, contextSize: 512, settings: { embeddings: true } });
  embed = routerEmbedder(new ModelRouter([new LocalEngine([model])]), "embed");
});
after(() => model.dispose());

const logger = pino({ level: "silent" });
const CHAT: ModelInfo = { id: "m", engine: "local", ownedBy: "test", reasoning: false, contextLength: 8192 };
const signal = new AbortController().signal;
const user = (userId: string): Actor => ({ kind: "user", userId, role: "user", apiKeyId: null, sessionId: null, planId: null });
/** No letter or digit: the lexical index has no word to look for. */
const SMILEYS = ":-) ;-) :-(";
const TEXTS = ["Quokkas live on Rottnest Island.", "Wombats dig burrows at night.", "Telemetry came from the satellite.", SMILEYS];

async function fileOf(store: TestStore, userId: string, texts: string[]): Promise<string> {
  const file = await createFile(store.db, { userId, filename: "notes.md", mime: "text/markdown", purpose: "assistants", content: new TextEncoder().encode(texts.join("\n\n")) });
  await insertChunks(store.db, file.id, userId, texts.map((text, ordinal) => ({ ordinal, heading: null, text, start: ordinal * 100, end: ordinal * 100 + text.length })));
  await markIndexed(store.db, file.id);
  return file.id;
}

forEachDatabase("hybrid retrieval: vectors find what words cannot, fuse with lexical hits, stay the owner's, and go with the file", async (store) => {
  const owner = await insertUser(store.db, { username: "owner", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  const other = await insertUser(store.db, { username: "other", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  const semantic = new SemanticSearch({ db: store.db, model: "embed", embed, batch: 3 });
  const mine = await fileOf(store, owner.id, TEXTS);
  const theirs = await fileOf(store, other.id, [SMILEYS]);
  assert.equal(await semantic.embedFile(mine, owner.id), 4, "in batches of 3");
  assert.equal(await semantic.embedFile(mine, owner.id), 0, "embedded once");
  assert.equal(await semantic.embedFile(theirs, other.id), 1);

  // The lexical index finds nothing for a question of punctuation; the vector of the same text is nearest.
  assert.deepEqual(await searchChunks(store.db, store.dialect, { userId: owner.id, query: SMILEYS, limit: 10 }), []);
  const nearest = await semantic.search({ userId: owner.id, query: SMILEYS, limit: 10 });
  assert.equal(nearest[0]!.text, SMILEYS);
  assert.ok(nearest[0]!.score > 0.999, `the same text, the same vector (cosine ${nearest[0]!.score})`);
  assert.ok(nearest.every((h) => h.fileId === mine), "another user's identical chunk never appears");

  const ask = async (retriever: SearchRetriever, question: string, fileIds: string[]) => {
    const found = await retriever.retrieve({ actor: user(owner.id), request: { web: false, fileIds }, generation: { model: "m", messages: [{ role: "user", content: question }] }, model: CHAT, signal });
    const prompt = found.messages.at(-1)!.content;
    // The passages only: the question itself is in the prompt too.
    return { sources: found.sources, passages: prompt.slice(prompt.indexOf("Sources:"), prompt.lastIndexOf("Question:")) };
  };
  const lexical = new SearchRetriever({ db: store.db, dialect: store.dialect });
  const hybrid = new SearchRetriever({ db: store.db, dialect: store.dialect, semantic, logger });
  // Lexical alone falls back to the file's first passages; hybrid puts the matching chunk first.
  const alone = await ask(lexical, SMILEYS, [mine]);
  assert.ok(alone.passages.includes("Quokkas") && !alone.passages.includes(SMILEYS), "lexical alone misses it (the file's beginning stands in)");
  const bySmileys = await ask(hybrid, SMILEYS, [mine]);
  assert.equal(bySmileys.sources[0]!.snippet, SMILEYS, "the file's source shows its best passage: the vector match");

  // A word question: the lexical hit (found both ways) comes first, vector-only passages follow.
  const byWord = await ask(hybrid, "quokkas", [mine]);
  const passages = byWord.passages;
  assert.ok(passages.indexOf("Quokkas live") >= 0 && passages.indexOf("Quokkas live") < passages.indexOf("Wombats"), "the lexical hit first");
  assert.ok(passages.includes("Wombats dig burrows") && passages.includes("Telemetry"), "passages only the vectors found");
  assert.equal((await ask(lexical, "quokkas", [mine])).passages.includes("Wombats"), false, "lexical alone: the one hit");

  // Deleting the file removes its vectors: nothing left to find, even from the cached index.
  assert.ok(await deleteFile(store.db, mine));
  assert.equal(await countFileVectors(store.db, mine), 0);
  assert.deepEqual(await semantic.search({ userId: owner.id, query: SMILEYS, limit: 10 }), []);
  assert.equal((await semantic.search({ userId: other.id, query: SMILEYS, limit: 10 }))[0]!.fileId, theirs);
});

forEachDatabase("indexing embeds a file's chunks after it is processed; an embedding failure leaves it searchable by words", async (store) => {
  const text = `# Orbits\n\n${"A paragraph about orbits and satellites. ".repeat(40)}\n\n## Telemetry\n\n${"Another paragraph on telemetry. ".repeat(40)}\n`;
  const upload = async () => (await createFile(store.db, { userId: "u1", filename: "a.md", mime: "text/markdown", purpose: "assistants", content: new TextEncoder().encode(text) })).id;
  const config = { indexConcurrency: 1, maxFileBytes: 1_000_000, staleIndexingMs: 60_000 };

  let busyAsked = 0;
  const good = new FileIndexer({ db: store.db, dialect: store.dialect, config, logger, semantic: { search: new SemanticSearch({ db: store.db, model: "embed", embed }), busy: () => (busyAsked++, false) } });
  const first = await upload();
  good.enqueue(first);
  await good.idle();
  good.close();
  const indexed = (await getFile(store.db, first))!;
  assert.equal(indexed.status, "processed");
  assert.ok(indexed.chunks_total! >= 2);
  assert.equal(await countFileVectors(store.db, first), indexed.chunks_total, "every chunk embedded");
  assert.ok(busyAsked >= 1, "the model's queue is looked at before a batch");

  const failing: EmbedTexts = async () => {
    throw new Error("the embedding model is gone");
  };
  const bad = new FileIndexer({ db: store.db, dialect: store.dialect, config, logger, semantic: { search: new SemanticSearch({ db: store.db, model: "embed", embed: failing }) } });
  const second = await upload();
  bad.enqueue(second);
  await bad.idle();
  bad.close();
  assert.equal((await getFile(store.db, second))!.status, "processed");
  assert.equal(await countFileVectors(store.db, second), 0);
  assert.ok((await searchChunks(store.db, store.dialect, { userId: "u1", query: "telemetry", fileIds: [second], limit: 5 })).length > 0, "searchable by its words");
});

test("search.embeddingModel must name a served model that embeds", async () => {
  const router = new ModelRouter([new LocalEngine([model])]);
  const db = undefined as never;
  assert.equal(createSemanticSearch({ db, router }, "embed").model, "embed");
  assert.throws(() => createSemanticSearch({ db, router }, "nope"), (e: unknown) => isServiceError(e) && e.kind === "not_found");
});

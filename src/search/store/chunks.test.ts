import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase, type TestStore } from "../../../test/support/databases.ts";
import { ServiceError } from "../../errors.ts";
import type { Chunk } from "../documents/chunk.ts";
import { insertChunks, lexicalQuery, listChunks, MAX_SEARCH_FILE_IDS, searchChunks } from "./chunks.ts";
import { createFile, deleteFile } from "./files.ts";

/** A file of `texts`, one chunk each (offsets as if joined by blank lines), indexed. */
async function indexedFile(store: TestStore, userId: string, filename: string, texts: string[], headings: (string | null)[] = []): Promise<string> {
  const file = await createFile(store.db, { userId, filename, mime: "text/plain", purpose: "user_data", content: new TextEncoder().encode(texts.join("\n\n")) });
  let offset = 0;
  const chunks: Chunk[] = texts.map((text, ordinal) => {
    const chunk = { ordinal, heading: headings[ordinal] ?? null, text, start: offset, end: offset + text.length };
    offset += text.length + 2;
    return chunk;
  });
  assert.equal(await insertChunks(store.db, file.id, userId, chunks), true);
  return file.id;
}

const search = (store: TestStore, userId: string, query: string, extra: { fileIds?: string[]; limit?: number } = {}) =>
  searchChunks(store.db, store.dialect, { userId, query, limit: extra.limit ?? 10, ...(extra.fileIds ? { fileIds: extra.fileIds } : {}) });

forEachDatabase("searchChunks ranks the chunk with the most of the question's words first", async (store) => {
  const fileId = await indexedFile(store, "u1", "handbook.md", [
    "Shipping takes three to five days. Tracking numbers are sent by email once the parcel leaves.",
    "Refunds: a damaged item is refunded in full. Report the damaged item within 14 days and the refund is issued to the original card.",
    "Our offices are closed on public holidays. Opening hours are nine to five.",
    "A refund can take a few days to show on a statement.",
  ]);
  const hits = await search(store, "u1", "How do I get a refund for a damaged item?");
  assert.ok(hits.length >= 2, "the two chunks with the words are found");
  assert.equal(hits[0]!.ordinal, 1, "the chunk with refund, damaged and item (twice) ranks first");
  assert.equal(hits[0]!.fileId, fileId);
  assert.equal(hits[0]!.filename, "handbook.md");
  assert.match(hits[0]!.text, /^Refunds: a damaged item/);
  for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score, "higher score first");
  assert.ok(hits[0]!.score > hits.at(-1)!.score, "the best chunk scores strictly higher than the weakest");
  assert.ok(!hits.some((h) => h.ordinal === 2), "a chunk without any of the words is not a hit");
  // The offsets point into the text the chunks came from.
  const texts = await listChunks(store.db, fileId);
  assert.equal(texts[1]!.start, hits[0]!.start);
  assert.equal(hits[0]!.end - hits[0]!.start, hits[0]!.text.length);
});

forEachDatabase("searchChunks matches headings too and honours the limit", async (store) => {
  await indexedFile(store, "u1", "a.md", ["Nothing here about it.", "Some body text.", "Other words entirely."], [null, "Warranty terms", null]);
  const hits = await search(store, "u1", "warranty");
  assert.deepEqual(hits.map((h) => [h.ordinal, h.heading]), [[1, "Warranty terms"]]);
  await indexedFile(store, "u1", "b.md", Array.from({ length: 8 }, (_, i) => `warranty clause number ${i}`));
  assert.equal((await search(store, "u1", "warranty", { limit: 3 })).length, 3);
});

forEachDatabase("a user never finds another user's chunks", async (store) => {
  const mine = await indexedFile(store, "alice", "alice.txt", ["the secret launch code is zebra"]);
  await indexedFile(store, "bob", "bob.txt", ["bob also writes about the secret launch code zebra, twice: zebra"]);
  const hits = await search(store, "alice", "secret launch code zebra");
  assert.deepEqual(hits.map((h) => h.fileId), [mine]);
  assert.deepEqual(await search(store, "carol", "secret launch code zebra"), []);
  // Naming another user's file does not widen the search either.
  const bobs = await search(store, "bob", "zebra");
  assert.deepEqual(await search(store, "alice", "zebra", { fileIds: [bobs[0]!.fileId] }), []);
});

forEachDatabase("searchChunks narrows to the given files", async (store) => {
  const a = await indexedFile(store, "u1", "a.txt", ["apples and pears"]);
  const b = await indexedFile(store, "u1", "b.txt", ["apples and plums"]);
  assert.deepEqual(new Set((await search(store, "u1", "apples")).map((h) => h.fileId)), new Set([a, b]));
  assert.deepEqual((await search(store, "u1", "apples", { fileIds: [b, b] })).map((h) => h.fileId), [b]);
  assert.deepEqual(await search(store, "u1", "apples", { fileIds: [] }), [], "no files chosen: nothing found");
  await assert.rejects(
    search(store, "u1", "apples", { fileIds: Array.from({ length: MAX_SEARCH_FILE_IDS + 1 }, (_, i) => `file-${i}`) }),
    (err) => err instanceof ServiceError && err.kind === "invalid_request",
  );
});

forEachDatabase("query syntax typed by a user is text, never FTS5 or tsquery syntax", async (store) => {
  const fileId = await indexedFile(store, "u1", "notes.txt", [
    "alpha beta gamma",
    "zebrafish live in rivers",
    "the heading column is mentioned here: heading text",
    "omega point",
  ]);
  const hostile = [
    '"unbalanced quote',
    'alpha" OR "1"="1',
    "NEAR(alpha omega, 1)",
    "alpha NEAR omega",
    "zebra*",
    "heading:alpha",
    "text : alpha",
    "alpha & omega",
    "alpha | omega",
    "!alpha <-> omega:*",
    "(alpha OR (omega",
    "))) AND NOT ((( ",
    "OR",
    "AND",
    "NOT",
    "^alpha",
    "'alpha' \\ omega ;--",
    "-",
    '""',
    "*",
    ":",
  ];
  for (const query of hostile) {
    const hits = await search(store, "u1", query);
    assert.ok(hits.every((h) => h.fileId === fileId), `${query}: only this user's chunks`);
  }
  // `*` is not a prefix operator: "zebra*" does not find "zebrafish".
  assert.deepEqual(await search(store, "u1", "zebra*"), []);
  // A column filter is not one either: "heading:alpha" is the phrase "heading alpha" (not there),
  // not "alpha in the heading column".
  assert.deepEqual(await search(store, "u1", "heading:alpha"), []);
  // Operators are words like any other (OR-ed in): "alpha NEAR omega" finds alpha and omega; in
  // "NEAR(alpha" the parenthesis joins two words into the phrase "near alpha" (not there).
  assert.deepEqual((await search(store, "u1", "alpha NEAR omega")).map((h) => h.ordinal).sort(), [0, 3]);
  assert.deepEqual((await search(store, "u1", "NEAR(alpha omega, 1)")).map((h) => h.ordinal), [3]);
  assert.deepEqual((await search(store, "u1", "alpha & omega")).map((h) => h.ordinal).sort(), [0, 3]);
  // Queries of only syntax find nothing and do not fail.
  for (const query of ["OR", "*", ":", "-", '""', "(((", "&|!"]) assert.deepEqual(await search(store, "u1", query), [], query);
});

forEachDatabase("deleting a file takes its chunks out of search", async (store) => {
  const keep = await indexedFile(store, "u1", "keep.txt", ["kiwi fruit salad"]);
  const gone = await indexedFile(store, "u1", "gone.txt", ["kiwi birds of New Zealand"]);
  assert.equal((await search(store, "u1", "kiwi")).length, 2);
  assert.equal(await deleteFile(store.db, gone), true);
  assert.deepEqual((await search(store, "u1", "kiwi")).map((h) => h.fileId), [keep]);
  assert.deepEqual(await search(store, "u1", "zealand"), []);
});

test("lexicalQuery drops common words when others remain, keeps phrases, folds exclusions in", () => {
  assert.deepEqual(lexicalQuery("What is the refund policy?"), { clauses: [[["refund"], ["policy?"]]], excluded: [] });
  assert.deepEqual(lexicalQuery("the who"), { clauses: [[["the"], ["who"]]], excluded: [] }, "all common words: kept");
  assert.deepEqual(lexicalQuery('"the who" tour -dates'), { clauses: [[["the", "who"], ["tour"], ["dates"]]], excluded: [] });
  assert.deepEqual(lexicalQuery("Refund refund REFUND"), { clauses: [[["refund"]]], excluded: [] });
  assert.equal(lexicalQuery("  ?! () "), null);
  assert.equal(lexicalQuery(""), null);
});

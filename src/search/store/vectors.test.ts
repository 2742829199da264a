import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase, type TestStore } from "../../../test/support/databases.ts";
import { insertChunks } from "./chunks.ts";
import { createFile, deleteFile, markFailed } from "./files.ts";
import { chunkHits, chunksToEmbed, countFileVectors, decodeVector, encodeVector, insertVectors, listVectors, vectorStamp } from "./vectors.ts";

const MODEL = "embed";

/** A file of `texts` (one chunk each) for `userId`; returns its id and chunk ids in order. */
async function fileWith(store: TestStore, userId: string, texts: string[]): Promise<{ fileId: string; chunkIds: string[] }> {
  const file = await createFile(store.db, { userId, filename: "a.txt", mime: "text/plain", purpose: "user_data", content: new TextEncoder().encode(texts.join("\n\n")) });
  await insertChunks(
    store.db,
    file.id,
    userId,
    texts.map((text, ordinal) => ({ ordinal, heading: null, text, start: 0, end: text.length })),
  );
  const chunks = await chunksToEmbed(store.db, file.id, MODEL);
  return { fileId: file.id, chunkIds: chunks.map((c) => c.id) };
}

test("vectors are stored as little-endian float32 and read back exactly", () => {
  const v = [1, -0.5, 3.25, 0, 1e-7];
  const bytes = encodeVector(v);
  assert.equal(bytes.byteLength, 20);
  assert.deepEqual([...bytes.slice(0, 4)], [0x00, 0x00, 0x80, 0x3f], "1.0f, least significant byte first");
  assert.deepEqual([...decodeVector(bytes)], [...Float32Array.from(v)]);
});

forEachDatabase("vectors: stored per chunk, listed per user and file, stamped, removed with their file", async (store) => {
  const a = await fileWith(store, "u1", ["one", "two", "three"]);
  const b = await fileWith(store, "u1", ["four"]);
  const other = await fileWith(store, "u2", ["five"]);
  assert.deepEqual(await vectorStamp(store.db, "u1", MODEL), { count: 0, newest: "" });

  assert.equal(await insertVectors(store.db, { fileId: a.fileId, userId: "u1", model: MODEL, vectors: a.chunkIds.map((chunkId, i) => ({ chunkId, vector: [i, 1, 0] })) }), true);
  assert.equal(await insertVectors(store.db, { fileId: b.fileId, userId: "u1", model: MODEL, vectors: [{ chunkId: b.chunkIds[0]!, vector: [9, 9, 9] }] }), true);
  assert.equal(await insertVectors(store.db, { fileId: other.fileId, userId: "u2", model: MODEL, vectors: [{ chunkId: other.chunkIds[0]!, vector: [5, 5, 5] }] }), true);
  // Another user's file, or a missing one: nothing written.
  assert.equal(await insertVectors(store.db, { fileId: other.fileId, userId: "u1", model: MODEL, vectors: [{ chunkId: other.chunkIds[0]!, vector: [0, 0, 0] }] }), false);
  assert.equal(await insertVectors(store.db, { fileId: "file-missing", userId: "u1", model: MODEL, vectors: [] }), false);
  // Embedding a chunk twice keeps the first vector.
  await insertVectors(store.db, { fileId: b.fileId, userId: "u1", model: MODEL, vectors: [{ chunkId: b.chunkIds[0]!, vector: [1, 1, 1] }] });

  const all = await listVectors(store.db, { userId: "u1", model: MODEL });
  assert.deepEqual(all.map((v) => v.chunkId).sort(), [...a.chunkIds, ...b.chunkIds].sort(), "u1's vectors only");
  assert.deepEqual([...all.find((v) => v.chunkId === b.chunkIds[0])!.vector], [9, 9, 9]);
  assert.deepEqual(all.map((v) => v.chunkId), [...all.map((v) => v.chunkId)].sort().reverse(), "newest chunk first");
  assert.deepEqual((await listVectors(store.db, { userId: "u1", model: MODEL, fileIds: [b.fileId] })).map((v) => v.chunkId), b.chunkIds);
  assert.deepEqual(await listVectors(store.db, { userId: "u1", model: MODEL, fileIds: [] }), []);
  assert.deepEqual(await listVectors(store.db, { userId: "u1", model: "another-model" }), []);
  const page = await listVectors(store.db, { userId: "u1", model: MODEL, limit: 2 });
  const rest = await listVectors(store.db, { userId: "u1", model: MODEL, before: page[1]!.chunkId });
  assert.deepEqual([...page, ...rest].map((v) => v.chunkId), all.map((v) => v.chunkId), "pages by `before`");
  assert.deepEqual(await chunksToEmbed(store.db, a.fileId, MODEL), [], "all embedded");
  assert.equal((await chunksToEmbed(store.db, a.fileId, "another-model")).length, 3);
  const stamp = await vectorStamp(store.db, "u1", MODEL);
  assert.equal(stamp.count, 4);
  assert.equal(stamp.newest, all[0]!.chunkId);

  // Hits in the order asked, others' chunks and files outside the filter left out.
  const hits = await chunkHits(store.db, { userId: "u1", chunkIds: [b.chunkIds[0]!, other.chunkIds[0]!, a.chunkIds[1]!], scores: [0.9, 0.8, 0.7] });
  assert.deepEqual(
    hits.map((h) => [h.text, h.score, h.fileId]),
    [
      ["four", 0.9, b.fileId],
      ["two", 0.7, a.fileId],
    ],
  );
  assert.deepEqual((await chunkHits(store.db, { userId: "u1", chunkIds: a.chunkIds, scores: [1, 1, 1], fileIds: [b.fileId] })).length, 0);

  assert.equal(await deleteFile(store.db, a.fileId), true);
  assert.equal(await countFileVectors(store.db, a.fileId), 0);
  assert.deepEqual((await listVectors(store.db, { userId: "u1", model: MODEL })).map((v) => v.chunkId), b.chunkIds);
  assert.equal((await vectorStamp(store.db, "u1", MODEL)).count, 1);
  // A failed file's chunks go, and their vectors with them (cascade).
  await markFailed(store.db, b.fileId, "broken");
  assert.equal(await countFileVectors(store.db, b.fileId), 0);
  assert.equal((await listVectors(store.db, { userId: "u2", model: MODEL })).length, 1, "u2's vector untouched");
});

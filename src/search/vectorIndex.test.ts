import assert from "node:assert/strict";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import { insertChunks } from "./store/chunks.ts";
import { createFile, deleteFile } from "./store/files.ts";
import { chunksToEmbed, insertVectors } from "./store/vectors.ts";
import { VectorIndex } from "./vectorIndex.ts";

const MODEL = "embed";

/** Stores a file for `userId` whose chunks have `vectors`; returns the file id and its chunk ids. */
async function fileWithVectors(store: TestStore, userId: string, vectors: number[][]): Promise<{ fileId: string; chunkIds: string[]; rows: { chunkId: string; fileId: string; vector: Float32Array }[] }> {
  const file = await createFile(store.db, { userId, filename: "v.txt", mime: "text/plain", purpose: "user_data", content: new Uint8Array([1]) });
  await insertChunks(store.db, file.id, userId, vectors.map((_, ordinal) => ({ ordinal, heading: null, text: `chunk ${ordinal}`, start: 0, end: 1 })));
  const chunkIds = (await chunksToEmbed(store.db, file.id, MODEL)).map((c) => c.id);
  const rows = chunkIds.map((chunkId, i) => ({ chunkId, fileId: file.id, vector: Float32Array.from(vectors[i]!) }));
  assert.ok(await insertVectors(store.db, { fileId: file.id, userId, model: MODEL, vectors: rows }));
  return { fileId: file.id, chunkIds, rows };
}

/** A unit-ish vector pointing mostly along axis `i` of 8. */
const axis = (i: number, tilt = 0.1) => Array.from({ length: 8 }, (_, j) => (j === i ? 1 : tilt));

forEachDatabase("vector index: nearest first, by file, one user's; another gateway's additions and deletions are seen", async (store) => {
  const a = await fileWithVectors(store, "u1", [axis(0), axis(1), axis(2)]);
  const b = await fileWithVectors(store, "u1", [axis(3), axis(4)]);
  const other = await fileWithVectors(store, "u2", [axis(5, 0)]);
  const here = new VectorIndex({ db: store.db, model: MODEL });
  const there = new VectorIndex({ db: store.db, model: MODEL });

  const nearest = async (index: VectorIndex, userId: string, v: number[], fileIds?: string[]) =>
    (await index.search(userId, v, { k: 3, ...(fileIds ? { fileIds } : {}) })).map((m) => m.chunkId);
  assert.deepEqual((await nearest(here, "u1", axis(1, 0)))[0], a.chunkIds[1]);
  assert.equal(here.stats.builds, 1);
  const top = await here.search("u1", axis(1, 0), { k: 1 });
  assert.ok(top[0]!.score > 0.9 && top[0]!.score <= 1.0001, `cosine similarity, got ${top[0]!.score}`);
  assert.deepEqual((await nearest(here, "u1", axis(1, 0), [b.fileId])).sort(), [...b.chunkIds].sort(), "only the file asked for, even when farther");
  assert.deepEqual(await nearest(here, "u1", axis(1, 0), []), []);
  assert.ok(!(await nearest(here, "u1", axis(5, 0))).includes(other.chunkIds[0]!), "another user's vector never appears, even an exact match");
  assert.deepEqual(await nearest(here, "u2", axis(5, 0)), other.chunkIds);
  assert.deepEqual(await nearest(here, "u3", axis(5, 0)), [], "a user with no vectors");
  assert.deepEqual(await here.search("u1", [1, 2, 3], { k: 3 }), [], "a vector of another length finds nothing");
  assert.equal(here.stats.builds, 2, "u1 built once (searches reuse it), u2 once");

  // Another gateway (its own index, the same database) adds vectors: seen at the next search here.
  const c = await fileWithVectors(store, "u1", [axis(6, 0)]);
  there.added("u1", c.rows);
  assert.deepEqual((await nearest(here, "u1", axis(6, 0)))[0], c.chunkIds[0]);
  assert.equal(here.stats.builds, 3, "rebuilt: the stamp changed");

  // Vectors this process stores are added in place: no rebuild.
  const d = await fileWithVectors(store, "u1", [axis(7, 0)]);
  here.added("u1", d.rows);
  assert.deepEqual((await nearest(here, "u1", axis(7, 0)))[0], d.chunkIds[0]);
  assert.equal(here.stats.builds, 3);

  // A deleted file: the stamp changes, the index is rebuilt without it.
  await deleteFile(store.db, d.fileId);
  assert.ok(!(await nearest(here, "u1", axis(7, 0))).includes(d.chunkIds[0]!));
  assert.equal(here.stats.builds, 4);
});

forEachDatabase("vector index: bounded per user (newest kept) and in total (least recently used dropped)", async (store) => {
  const a = await fileWithVectors(store, "u1", [axis(0), axis(1), axis(2), axis(3)]);
  await fileWithVectors(store, "u2", [axis(0), axis(1)]);
  const index = new VectorIndex({ db: store.db, model: MODEL, maxVectorsPerIndex: 3, maxCachedVectors: 4 });
  const found = (await index.search("u1", axis(0, 0), { k: 10 })).map((m) => m.chunkId);
  assert.equal(found.length, 3, "at most 3 vectors in a user's index");
  assert.deepEqual([...found].sort(), [...a.chunkIds].sort().slice(1), "the newest three");
  assert.equal(index.cachedVectors, 3);
  await index.search("u2", axis(0, 0), { k: 10 });
  assert.equal(index.cachedVectors, 2, "u1's index dropped to make room for u2's");
  await index.search("u1", axis(0, 0), { k: 10 });
  assert.equal(index.cachedVectors, 3);
  assert.equal(index.stats.builds, 3);
});

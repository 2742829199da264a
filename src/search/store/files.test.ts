import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { forEachDatabase } from "../../../test/support/databases.ts";
import { insertChunks, listChunks, searchChunks } from "./chunks.ts";
import {
  cleanFilename,
  createFile,
  deleteFile,
  getFile,
  indexingProgress,
  listFiles,
  markFailed,
  markIndexed,
  MAX_FILENAME_CHARS,
  readBlob,
  setChunksTotal,
  startIndexing,
  storedBytes,
} from "./files.ts";

const chunk = (ordinal: number, text: string) => ({ ordinal, heading: null, text, start: ordinal * 100, end: ordinal * 100 + text.length });

forEachDatabase("createFile stores the bytes in the database, exactly, under a generated id", async (store) => {
  // Every byte value, including NUL and invalid UTF-8: the blob is not text.
  const content = new Uint8Array(600).map((_, i) => (i * 7) % 256);
  const file = await createFile(store.db, { userId: "u1", filename: "../../etc/passwd", mime: "application/octet-stream", purpose: "user_data", content }, 1_000);
  assert.match(file.id, /^file-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(file.filename, "../../etc/passwd", "kept as a label only");
  assert.equal(file.bytes, 600);
  assert.equal(file.sha256, createHash("sha256").update(content).digest("hex"));
  assert.equal(file.status, "processing");
  assert.deepEqual(await getFile(store.db, file.id), file);
  const blob = await readBlob(store.db, file.id);
  assert.ok(blob instanceof Uint8Array);
  assert.deepEqual(Buffer.from(blob), Buffer.from(content));
  // Another process on the same database (a second gateway) reads the same bytes.
  const other = await store.openAnother();
  assert.deepEqual(Buffer.from((await readBlob(other.db, file.id))!), Buffer.from(content));
  assert.equal(await readBlob(store.db, "file-missing"), undefined);
  assert.equal(await getFile(store.db, "file-missing"), undefined);
});

forEachDatabase("listFiles and storedBytes are per user", async (store) => {
  const a1 = await createFile(store.db, { userId: "alice", filename: "a1.txt", mime: "text/plain", purpose: "user_data", content: new Uint8Array(10) }, 1_000);
  const a2 = await createFile(store.db, { userId: "alice", filename: "a2.txt", mime: "text/plain", purpose: "assistants", content: new Uint8Array(32) }, 2_000);
  await createFile(store.db, { userId: "bob", filename: "b.txt", mime: "text/plain", purpose: "user_data", content: new Uint8Array(1000) }, 3_000);
  assert.deepEqual((await listFiles(store.db, "alice")).map((f) => f.id), [a2.id, a1.id], "newest first");
  assert.deepEqual((await listFiles(store.db, "alice", { purpose: "user_data" })).map((f) => f.id), [a1.id]);
  assert.deepEqual((await listFiles(store.db, "alice", { limit: 1 })).map((f) => f.id), [a2.id]);
  assert.equal(await storedBytes(store.db, "alice"), 42);
  assert.equal(await storedBytes(store.db, "bob"), 1000);
  assert.equal(await storedBytes(store.db, "carol"), 0);
  await deleteFile(store.db, a2.id);
  assert.equal(await storedBytes(store.db, "alice"), 10, "a deleted file no longer counts");
});

forEachDatabase("deleteFile removes the file, its bytes and its chunks", async (store) => {
  const file = await createFile(store.db, { userId: "u1", filename: "x.txt", mime: "text/plain", purpose: "user_data", content: new TextEncoder().encode("mango") });
  await insertChunks(store.db, file.id, "u1", [chunk(0, "mango season")]);
  assert.equal(await deleteFile(store.db, file.id), true);
  assert.equal(await getFile(store.db, file.id), undefined);
  assert.equal(await readBlob(store.db, file.id), undefined);
  assert.deepEqual(await listChunks(store.db, file.id), []);
  assert.deepEqual(await searchChunks(store.db, store.dialect, { userId: "u1", query: "mango", limit: 5 }), []);
  assert.equal(await deleteFile(store.db, file.id), false, "already gone");
  assert.equal(await insertChunks(store.db, file.id, "u1", [chunk(1, "late mango batch")]), false, "an indexer racing the delete writes nothing");
  assert.deepEqual(await listChunks(store.db, file.id), []);
});

forEachDatabase("indexing progress advances batch by batch, then the file is processed", async (store) => {
  const file = await createFile(store.db, { userId: "u1", filename: "big.md", mime: "text/markdown", purpose: "user_data", content: new Uint8Array(5) });
  assert.deepEqual(indexingProgress(file), { status: "processing", chunksTotal: null, chunksIndexed: 0, fraction: null });
  await setChunksTotal(store.db, file.id, 4);
  assert.equal(await insertChunks(store.db, file.id, "u1", [chunk(0, "first papaya"), chunk(1, "second")]), true);
  let now = (await getFile(store.db, file.id))!;
  assert.deepEqual(indexingProgress(now), { status: "processing", chunksTotal: 4, chunksIndexed: 2, fraction: 0.5 });
  // What is indexed is searchable before the end.
  assert.equal((await searchChunks(store.db, store.dialect, { userId: "u1", query: "papaya", limit: 5 })).length, 1);
  assert.equal(await insertChunks(store.db, file.id, "someone-else", [chunk(2, "x")]), false, "not this user's file: nothing written");
  await insertChunks(store.db, file.id, "u1", [chunk(2, "third"), chunk(3, "fourth")]);
  await markIndexed(store.db, file.id);
  now = (await getFile(store.db, file.id))!;
  assert.deepEqual(indexingProgress(now), { status: "processed", chunksTotal: 4, chunksIndexed: 4, fraction: 1 });
  assert.deepEqual((await listChunks(store.db, file.id)).map((c) => c.ordinal), [0, 1, 2, 3]);
});

forEachDatabase("markFailed records the error and takes the partial chunks out of search", async (store) => {
  const file = await createFile(store.db, { userId: "u1", filename: "bad.pdf", mime: "application/pdf", purpose: "user_data", content: new Uint8Array(3) });
  await insertChunks(store.db, file.id, "u1", [chunk(0, "half a guava")]);
  await markFailed(store.db, file.id, "the PDF could not be read");
  const failed = (await getFile(store.db, file.id))!;
  assert.equal(failed.status, "error");
  assert.equal(failed.error, "the PDF could not be read");
  assert.equal(failed.chunks_indexed, 0);
  assert.deepEqual(await searchChunks(store.db, store.dialect, { userId: "u1", query: "guava", limit: 5 }), []);
  assert.equal((await readBlob(store.db, file.id))?.byteLength, 3, "the bytes stay until the user deletes the file");
  // A failed file is not turned into a processed one by a late markIndexed.
  await markIndexed(store.db, file.id);
  assert.equal((await getFile(store.db, file.id))!.status, "error");
});

forEachDatabase("startIndexing starts a crashed job over from nothing", async (store) => {
  const file = await createFile(store.db, { userId: "u1", filename: "a.md", mime: "text/markdown", purpose: "user_data", content: new Uint8Array(1) });
  await startIndexing(store.db, file.id, 3);
  await insertChunks(store.db, file.id, "u1", [chunk(0, "first lychee"), chunk(1, "second")]);
  // The process died here; the job runs again, with the same ordinals.
  await startIndexing(store.db, file.id, 3);
  assert.deepEqual(indexingProgress((await getFile(store.db, file.id))!), { status: "processing", chunksTotal: 3, chunksIndexed: 0, fraction: 0 });
  assert.deepEqual(await searchChunks(store.db, store.dialect, { userId: "u1", query: "lychee", limit: 5 }), []);
  await insertChunks(store.db, file.id, "u1", [chunk(0, "first lychee"), chunk(1, "second"), chunk(2, "third")]);
  assert.equal((await searchChunks(store.db, store.dialect, { userId: "u1", query: "lychee", limit: 5 })).length, 1);
  assert.equal((await getFile(store.db, file.id))!.chunks_indexed, 3);
});

test("cleanFilename keeps a label and nothing that could disguise it", () => {
  assert.equal(cleanFilename("CON.txt"), "CON.txt");
  assert.equal(cleanFilename("  report\u0000\u202Efdp.exe  "), "reportfdp.exe", "NUL and a right-to-left override removed");
  assert.equal(cleanFilename("a\n\tb.txt"), "a b.txt");
  assert.equal(cleanFilename("\u0007 "), "file");
  const long = cleanFilename(`${"x".repeat(400)}.pdf`);
  assert.equal(long.length, MAX_FILENAME_CHARS);
  assert.ok(long.endsWith("x.pdf"));
  assert.equal(Array.from(cleanFilename("😀".repeat(300))).length, MAX_FILENAME_CHARS, "cut by characters, not UTF-16 units");
});

import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { forEachDatabase } from "../../../test/support/databases.ts";
import { insertChunks } from "../../search/store/chunks.ts";
import { createFile, deleteFile } from "../../search/store/files.ts";
import { chunksToEmbed, countFileVectors, insertVectors } from "../../search/store/vectors.ts";
import * as m0580 from "./0580_chunk_vectors.ts";

/** 0580's vectors go with their chunk (cascade, without the repository's help), and `down` undoes it cleanly. */
forEachDatabase("0580 vectors cascade with their chunks, and the migration undoes cleanly", async (store) => {
  const file = await createFile(store.db, { userId: "u1", filename: "a.txt", mime: "text/plain", purpose: "user_data", content: new Uint8Array([1]) });
  await insertChunks(store.db, file.id, "u1", [{ ordinal: 0, heading: null, text: "quokkas", start: 0, end: 7 }]);
  const [chunk] = await chunksToEmbed(store.db, file.id, "embed");
  await insertVectors(store.db, { fileId: file.id, userId: "u1", model: "embed", vectors: [{ chunkId: chunk!.id, vector: [1, 0] }] });
  assert.equal(await countFileVectors(store.db, file.id), 1);
  await store.db.deleteFrom("file_chunks").where("file_id", "=", file.id).execute();
  assert.equal(await countFileVectors(store.db, file.id), 0, "deleting the chunk deleted its vector");

  const db = store.db as unknown as Kysely<any>;
  await m0580.down(db);
  await assert.rejects(store.db.selectFrom("file_chunk_vectors").selectAll().execute());
  assert.ok(await deleteFile(store.db, file.id).catch(() => false) === false, "the repository expects the table");
  await m0580.up(db);
  assert.equal(await deleteFile(store.db, file.id), true);
});

import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { forEachDatabase } from "../../../test/support/databases.ts";
import { insertChunks, searchChunks } from "../../search/store/chunks.ts";
import { createFile } from "../../search/store/files.ts";
import * as m0560 from "./0560_search_documents.ts";
import { migrations } from "./index.ts";

/** 0560's `down` removes the tables and the lexical index (triggers included), so `up` can run again. */
forEachDatabase("0560 undoes cleanly and up again gives a working index", async (store) => {
  const add = async (text: string) => {
    const file = await createFile(store.db, { userId: "u1", filename: "a.txt", mime: "text/plain", purpose: "user_data", content: new TextEncoder().encode(text) });
    await insertChunks(store.db, file.id, "u1", [{ ordinal: 0, heading: null, text, start: 0, end: text.length }]);
  };
  const found = async (query: string) => (await searchChunks(store.db, store.dialect, { userId: "u1", query, limit: 5 })).map((h) => h.text);
  await add("quokkas are marsupials");
  assert.deepEqual(await found("quokkas"), ["quokkas are marsupials"]);

  const db = store.db as unknown as Kysely<any>;
  // Later migrations may build on 0560's tables: undo them first, newest first, and redo them after.
  const later = Object.keys(migrations).filter((name) => name > "0560_search_documents").sort();
  for (const name of [...later].reverse()) await migrations[name]!.down!(db);
  await m0560.down(db);
  await assert.rejects(store.db.selectFrom("files").selectAll().execute());
  await assert.rejects(store.db.selectFrom("file_chunks").selectAll().execute());
  await m0560.up(db);
  for (const name of later) await migrations[name]!.up(db);
  assert.deepEqual(await found("quokkas"), [], "the old rows went with the tables");
  await add("wombats dig burrows");
  assert.deepEqual(await found("wombats"), ["wombats dig burrows"]);
});

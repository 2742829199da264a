import assert from "node:assert/strict";
import { join } from "node:path";
import { sql, type Kysely } from "kysely";
import { forEachDatabase } from "../../../test/support/databases.ts";
import { updateMessage } from "../../chat/conversations.ts";
import { searchConversations } from "../../chat/search.ts";
import { openDatabase, type OpenDatabaseOptions } from "../database.ts";
import * as m0550 from "./0550_conversation_features.ts";

/**
 * 0550 on a database with conversations from before it: finished messages are searchable at once
 * (SQLite's index is filled by the migration; PostgreSQL's is an index), an answer left streaming
 * joins the index when it ends, and `down` undoes it all so that `up` can run again.
 */
forEachDatabase("0550 makes the messages written before it searchable, and undoes cleanly", async (store) => {
  const options: OpenDatabaseOptions =
    store.dialect === "sqlite" ? { dataDir: join(store.options.dataDir, "before-0550") } : { ...store.options, schema: `${store.options.schema}_b0550` };
  try {
    const old = await openDatabase({ ...options, migrateTo: "0540_moderation_events" });
    const oldDb = old.db as unknown as Kysely<any>;
    await oldDb.insertInto("conversations").values({ id: "c1", user_id: "u1", title: "Old", model: null, current_message_id: null, created_at: 1, updated_at: 1 }).execute();
    const message = (id: string, content: string, status: string) => ({
      id,
      conversation_id: "c1",
      parent_id: null,
      role: "assistant",
      content,
      reasoning: "",
      model: null,
      thinking: 1,
      status,
      error: null,
      prompt_tokens: 0,
      completion_tokens: 0,
      reasoning_tokens: 0,
      ttft_ms: null,
      reasoning_ms: null,
      total_ms: null,
      created_at: 1,
      updated_at: 1,
      moderation: null,
    });
    await oldDb.insertInto("messages").values([message("m1", "quokkas are marsupials", "complete"), message("m2", "wombats dig", "streaming")]).execute();
    await old.close();

    const migrated = await openDatabase(options);
    try {
      const found = async (query: string) => (await searchConversations(migrated.db, migrated.dialect, { userId: "u1", query, limit: 10 })).map((r) => r.match?.message_id ?? null);
      assert.deepEqual(await found("quokkas"), ["m1"]);
      assert.deepEqual(await found("wombats"), [], "still streaming when migrated");
      await updateMessage(migrated.db, "m2", { status: "interrupted" });
      assert.deepEqual(await found("wombats"), ["m2"]);
      const conv = await migrated.db.selectFrom("conversations").select(["settings", "pinned_at"]).where("id", "=", "c1").executeTakeFirstOrThrow();
      assert.deepEqual(conv, { settings: null, pinned_at: null });

      const db = migrated.db as unknown as Kysely<any>;
      await m0550.down(db);
      await assert.rejects(migrated.db.selectFrom("conversation_shares").selectAll().execute());
      await m0550.up(db);
      assert.deepEqual(await found("quokkas"), ["m1"], "up again rebuilds the index");
    } finally {
      await migrated.close();
    }
  } finally {
    if (options.schema) await sql`drop schema if exists ${sql.id(options.schema)} cascade`.execute(store.db);
  }
});

import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import {
  InvalidCursorError,
  createConversation,
  deleteConversation,
  findConversation,
  findMessage,
  insertMessage,
  listConversations,
  listMessages,
  markInterrupted,
  updateConversation,
  updateMessage,
} from "./conversations.ts";

forEachDatabase("conversations list newest activity first, per user, with keyset pages", async (store) => {
  const { db } = store;
  const a = await createConversation(db, { userId: "u1", title: "first", now: 1000 });
  const b = await createConversation(db, { userId: "u1", title: "second", now: 2000 });
  const c = await createConversation(db, { userId: "u1", title: "third", now: 3000 });
  await createConversation(db, { userId: "u2", title: "someone else's", now: 4000 });
  // Activity in the oldest moves it to the top.
  await updateConversation(db, a.id, { updated_at: 5000 });

  const page1 = await listConversations(db, { userId: "u1", limit: 2 });
  assert.deepEqual(page1.items.map((x) => x.title), ["first", "third"]);
  assert.ok(page1.nextCursor);
  const page2 = await listConversations(db, { userId: "u1", limit: 2, cursor: page1.nextCursor });
  assert.deepEqual(page2.items.map((x) => x.id), [b.id]);
  assert.equal(page2.nextCursor, null);
  assert.equal((await listConversations(db, { userId: "u1", limit: 10 })).items.length, 3);
  assert.ok(c);
  await assert.rejects(listConversations(db, { userId: "u1", limit: 2, cursor: "not-a-cursor" }), InvalidCursorError);
  await assert.rejects(listConversations(db, { userId: "u1", limit: 0 }), RangeError);
});

forEachDatabase("title search is a case-insensitive substring match with LIKE wildcards escaped", async (store) => {
  const { db } = store;
  await createConversation(db, { userId: "u1", title: "Rust lifetimes explained" });
  await createConversation(db, { userId: "u1", title: "Cooking RUST-free pans" });
  await createConversation(db, { userId: "u1", title: "100% sure_thing" });
  await createConversation(db, { userId: "u1", title: null });
  await createConversation(db, { userId: "u2", title: "rust for u2" });
  const titles = async (search: string) =>
    (await listConversations(db, { userId: "u1", search, limit: 10 })).items.map((c) => c.title).sort();
  assert.deepEqual(await titles("rust"), ["Cooking RUST-free pans", "Rust lifetimes explained"]);
  assert.deepEqual(await titles("%"), ["100% sure_thing"]);
  assert.deepEqual(await titles("1_0"), []);
  assert.deepEqual(await titles("0% s"), ["100% sure_thing"]);
  assert.deepEqual(await titles("nothing like it"), []);
});

forEachDatabase("deleting a conversation deletes its messages", async (store) => {
  const { db } = store;
  const conv = await createConversation(db, { userId: "u1" });
  const keep = await createConversation(db, { userId: "u1" });
  const q = await insertMessage(db, { conversationId: conv.id, parentId: null, role: "user", content: "hi", status: "complete" });
  await insertMessage(db, { conversationId: conv.id, parentId: q.id, role: "assistant", status: "complete" });
  const other = await insertMessage(db, { conversationId: keep.id, parentId: null, role: "user", content: "stay", status: "complete" });
  await deleteConversation(db, conv.id);
  assert.equal(await findConversation(db, conv.id), undefined);
  assert.deepEqual(await listMessages(db, conv.id), []);
  assert.equal((await findMessage(db, other.id))?.content, "stay");
});

forEachDatabase("markInterrupted turns only stale streaming messages into interrupted, keeping their text", async (store) => {
  const { db } = store;
  const conv = await createConversation(db, { userId: "u1" });
  const q = await insertMessage(db, { conversationId: conv.id, parentId: null, role: "user", content: "hi", status: "complete", now: 100 });
  const dead = await insertMessage(db, { conversationId: conv.id, parentId: q.id, role: "assistant", status: "streaming", now: 100 });
  await updateMessage(db, dead.id, { content: "partial ans", reasoning: "some thought", updated_at: 200 });
  const alive = await insertMessage(db, { conversationId: conv.id, parentId: q.id, role: "assistant", status: "streaming", now: 100 });
  await updateMessage(db, alive.id, { content: "still going", updated_at: 10_000 });
  const done = await insertMessage(db, { conversationId: conv.id, parentId: q.id, role: "assistant", status: "complete", now: 100 });

  assert.equal(await markInterrupted(db, 5_000), 1);
  const after = await findMessage(db, dead.id);
  assert.equal(after?.status, "interrupted");
  assert.equal(after?.content, "partial ans");
  assert.equal(after?.reasoning, "some thought");
  assert.equal((await findMessage(db, alive.id))?.status, "streaming");
  assert.equal((await findMessage(db, done.id))?.status, "complete");
});

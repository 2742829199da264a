import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import { createConversation, findMessage, insertMessage, updateMessage } from "../chat/conversations.ts";
import { insertInterventions, listInterventions } from "./store.ts";
import { noticeOf, type Intervention } from "./types.ts";

const withhold: Intervention = {
  policy: "no-42",
  action: "withhold",
  stage: "output",
  channel: "content",
  offset: 36,
  reason: "No answers about 42.",
  notice: noticeOf("no-42", "withhold", "No answers about 42."),
  source: "words",
  matched: "42",
};
const warn: Intervention = { ...withhold, policy: "careful", action: "warn", stage: "input", channel: null, offset: 0, notice: noticeOf("careful", "warn", "r"), reason: "r" };

forEachDatabase("interventions are stored with who and where, and listed newest first, by policy, in pages", async (store) => {
  const context = { model: "scripted", userId: "u1", apiKeyId: null, conversationId: "c1", messageId: "m1" };
  const t0 = Date.UTC(2026, 0, 1);
  await insertInterventions(store.db, [warn, withhold], context, t0);
  await insertInterventions(store.db, [withhold], { ...context, userId: null, conversationId: null, messageId: null }, t0 + 1000);
  await insertInterventions(store.db, [], context, t0 + 2000);

  const all = await listInterventions(store.db, { limit: 10 });
  assert.equal(all.items.length, 3);
  assert.equal(all.items[0]!.created_at, t0 + 1000, "newest first; timestamps read back as numbers");
  assert.equal(all.nextCursor, null);
  const first = all.items.find((e) => e.policy === "no-42" && e.message_id === "m1")!;
  assert.deepEqual(
    [first.model, first.action, first.stage, first.channel, first.offset_chars, first.reason, first.source, first.matched, first.user_id, first.conversation_id],
    ["scripted", "withhold", "output", "content", 36, "No answers about 42.", "words", "42", "u1", "c1"],
  );
  assert.deepEqual((await listInterventions(store.db, { limit: 10, policy: "careful" })).items.map((e) => e.stage), ["input"]);
  const page1 = await listInterventions(store.db, { limit: 2 });
  assert.equal(page1.items.length, 2);
  const page2 = await listInterventions(store.db, { limit: 2, cursor: page1.nextCursor! });
  assert.equal(page2.items.length, 1);
  assert.equal(new Set([...page1.items, ...page2.items].map((e) => e.id)).size, 3);
});

forEachDatabase("a web answer keeps its moderation with it (messages.moderation)", async (store) => {
  const conversation = await createConversation(store.db, { userId: "u1" });
  const answer = await insertMessage(store.db, { conversationId: conversation.id, parentId: null, role: "assistant", status: "streaming" });
  assert.equal(answer.moderation, null);
  const moderation = JSON.stringify({ withheld: true, interventions: [{ policy: "no-42", notice: withhold.notice }] });
  await updateMessage(store.db, answer.id, { content: "Hello! I am the scripted test model.", status: "complete", moderation });
  const stored = await findMessage(store.db, answer.id);
  assert.equal(stored?.moderation, moderation);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Message } from "../chat/conversations.ts";
import type { ConversationShare } from "../chat/shares.ts";
import { presentSharedConversation } from "./conversationShare.ts";

const at = Date.UTC(2026, 11, 1, 12, 0, 0);
const share = { id: "s1", conversation_id: "c1", user_id: "u1", token_hash: "h", leaf_message_id: "m2", title: "Tower", include_reasoning: 0, show_author: 0, created_at: at } as ConversationShare;
const base: Message = {
  id: "m1",
  conversation_id: "c1",
  parent_id: null,
  role: "user",
  content: "How tall is the tower?",
  reasoning: "",
  model: null,
  thinking: 0,
  status: "complete",
  error: null,
  prompt_tokens: 0,
  completion_tokens: 0,
  reasoning_tokens: 0,
  ttft_ms: null,
  reasoning_ms: null,
  total_ms: null,
  created_at: at,
  updated_at: at,
  moderation: null,
  sources: null,
};
const stored = JSON.stringify([
  { index: 1, kind: "file", title: "tower.md — Height", file_id: "file-secret", filename: "tower.md", snippet: "The tower is 330 metres tall." },
  { index: 2, kind: "web", url: "https://example.org/tower", title: "The tower", snippet: "A tall tower." },
]);

test("a shared answer shows its sources: web pages with their address, documents by file name alone", () => {
  const shown = presentSharedConversation(share, [base, { ...base, id: "m2", parent_id: "m1", role: "assistant", content: "330 m [1][2]", model: "m", sources: stored }], null);
  assert.equal(shown.messages[0]!.sources, undefined, "a question has none");
  assert.deepEqual(shown.messages[1]!.sources, [
    { index: 1, kind: "file", title: "tower.md", filename: "tower.md" },
    { index: 2, kind: "web", url: "https://example.org/tower", title: "The tower" },
  ]);
  const text = JSON.stringify(shown);
  assert.ok(!text.includes("file-secret"), "no file id");
  assert.ok(!text.includes("330 metres"), "no passage of the document");
});

test("an answer without sources (or with unreadable ones) has no sources field", () => {
  for (const sources of [null, "", "not json", "[]"]) {
    const shown = presentSharedConversation(share, [{ ...base, role: "assistant", sources }], null);
    assert.ok(!("sources" in shown.messages[0]!), String(sources));
  }
});

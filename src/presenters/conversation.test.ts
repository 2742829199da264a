import assert from "node:assert/strict";
import { test } from "node:test";
import type { Message } from "../chat/conversations.ts";
import { presentConversation, presentMessage, presentReplyEvent } from "./conversation.ts";

const at = Date.UTC(2026, 11, 1, 12, 0, 0);
const message: Message = {
  id: "m1",
  conversation_id: "c1",
  parent_id: null,
  role: "assistant",
  content: "42",
  reasoning: "thinking",
  model: "scripted",
  thinking: 1,
  status: "complete",
  error: null,
  prompt_tokens: 10,
  completion_tokens: 5,
  reasoning_tokens: 3,
  ttft_ms: 12,
  reasoning_ms: 8,
  total_ms: 40,
  created_at: at,
  updated_at: at + 1000,
  moderation: null,
  sources: null,
};

test("a message is presented with ISO times and DeepThink as a boolean, and nothing else", () => {
  const shown = presentMessage({ ...message, ...({ secret_column: "never" } as object) } as Message);
  assert.equal(shown.thinking, true);
  assert.equal(shown.created_at, "2026-12-01T12:00:00.000Z");
  assert.equal(shown.updated_at, "2026-12-01T12:00:01.000Z");
  assert.ok(!("secret_column" in shown), "only the declared fields leave the server");
  assert.equal(presentMessage({ ...message, thinking: 0 }).thinking, false);
});

test("a conversation keeps only its public fields", () => {
  const shown = presentConversation({ id: "c1", user_id: "u1", title: null, model: "scripted", current_message_id: "m1", created_at: at, updated_at: at, settings: null, pinned_at: null } as never);
  assert.deepEqual(Object.keys(shown).sort(), ["created_at", "current_message_id", "id", "model", "pinned_at", "settings", "title", "updated_at"]);
  assert.ok(!("user_id" in shown));
});

test("reply events present the messages they carry like everywhere else; text events pass through", () => {
  const start = presentReplyEvent({ type: "start", user_message: null, assistant_message: message });
  assert.equal(start.type === "start" && start.assistant_message.created_at, "2026-12-01T12:00:00.000Z");
  const done = presentReplyEvent({ type: "done", message });
  assert.equal(done.type === "done" && done.message.thinking, true);
  assert.deepEqual(presentReplyEvent({ type: "content", text: "4" }), { type: "content", text: "4" });
});

test("a message's stored moderation is presented as an object (null when none intervened)", () => {
  assert.equal(presentMessage(message).moderation, null);
  const moderation = {
    withheld: true,
    interventions: [{ policy: "p", action: "withhold", stage: "output", channel: "content", offset: 7, reason: "r", notice: "Withheld by this server's policy 'p': r" }],
  };
  assert.deepEqual(presentMessage({ ...message, moderation: JSON.stringify(moderation) }).moderation, moderation);
});

import type { ReplyEvent } from "../chat/replyEvents.ts";
import type { Conversation, Message } from "../chat/conversations.ts";
import type { ConversationView, MessageView, ReplyEventView } from "./conversationTypes.ts";
import { parseStoredModeration } from "./moderation.ts";
import { parseStoredSources, presentSearched, presentSource } from "./sources.ts";
import { isoTime } from "./time.ts";
import { parseSettings } from "../chat/conversationSettings.ts";

/** A conversation as its owner sees it in the sidebar. */
export function presentConversation(c: Conversation): ConversationView {
  return {
    id: c.id,
    title: c.title,
    model: c.model,
    current_message_id: c.current_message_id,
    created_at: isoTime(c.created_at),
    updated_at: isoTime(c.updated_at),
    settings: parseSettings(c.settings),
    pinned_at: isoTime(c.pinned_at),
  };
}

export function presentMessage(m: Message): MessageView {
  return {
    id: m.id,
    conversation_id: m.conversation_id,
    parent_id: m.parent_id,
    role: m.role,
    content: m.content,
    reasoning: m.reasoning,
    model: m.model,
    thinking: m.thinking === 1,
    status: m.status,
    error: m.error,
    prompt_tokens: m.prompt_tokens,
    completion_tokens: m.completion_tokens,
    reasoning_tokens: m.reasoning_tokens,
    ttft_ms: m.ttft_ms,
    reasoning_ms: m.reasoning_ms,
    total_ms: m.total_ms,
    created_at: isoTime(m.created_at),
    updated_at: isoTime(m.updated_at),
    moderation: parseStoredModeration(m.moderation),
    sources: parseStoredSources(m.sources),
  };
}

/** One event of the web app's reply stream, messages presented like everywhere else. */
export function presentReplyEvent(event: ReplyEvent): ReplyEventView {
  switch (event.type) {
    case "start":
      return {
        ...event,
        user_message: event.user_message ? presentMessage(event.user_message) : null,
        assistant_message: presentMessage(event.assistant_message),
      };
    case "sources":
      return { type: "sources", sources: event.sources.map(presentSource), searched: presentSearched(event.searched) };
    case "snapshot":
    case "done":
    case "error":
      return { ...event, message: presentMessage(event.message) };
    default:
      return event;
  }
}

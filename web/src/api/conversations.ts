import { api } from "./http.ts";

// The shapes are declared once, beside the server's presenters.
import type { ConversationSearchView, ConversationView, MessageStatus, MessageView, ReplyErrorView } from "../../../src/presenters/conversationTypes.ts";

export type { MessageStatus };
export type { ReplyEvent, ReplyRequest } from "./replyTypes.ts";
export type Conversation = ConversationView;
export type Message = MessageView;
export type ReplyError = ReplyErrorView;
/** A sidebar row: with a search, the message that matched (null when the title did). */
export type ConversationListItem = Conversation & { match?: ConversationSearchView["match"] };

export const listConversations = (q = "", cursor?: string) => {
  const params = new URLSearchParams({ limit: "100" });
  if (q) params.set("q", q);
  if (cursor) params.set("cursor", cursor);
  return api<{ data: ConversationListItem[]; next_cursor: string | null }>("GET", `/api/conversations?${params}`);
};
export const createConversation = (model: string | null) => api<Conversation>("POST", "/api/conversations", { model });
export const getConversation = (id: string) =>
  api<{ conversation: Conversation; messages: Message[] }>("GET", `/api/conversations/${encodeURIComponent(id)}`);
export const renameConversation = (id: string, title: string) =>
  api<Conversation>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { title });
export const selectBranch = (id: string, messageId: string) =>
  api<Conversation>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { current_message_id: messageId });
export const pinConversation = (id: string, pinned: boolean) =>
  api<Conversation>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { pinned });
export const deleteConversation = (id: string) => api<void>("DELETE", `/api/conversations/${encodeURIComponent(id)}`);
export const stopReply = (id: string, messageId: string) =>
  api<Message>("POST", `/api/conversations/${encodeURIComponent(id)}/messages/${encodeURIComponent(messageId)}/stop`);

/**
 * The streaming calls live in their own chunk (./replyStream.ts): fetched once this module is read
 * (after the first paint), so the first send does not wait for it.
 */
const replyStream = import("./replyStream.ts");
replyStream.catch(() => undefined);
export const loadReplyStream = () => replyStream;

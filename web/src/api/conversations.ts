import { api, ApiError, NetworkError, request } from "./http.ts";

// The shapes are declared once, beside the server's presenters.
import type { ConversationView, MessageStatus, MessageView, ReplyErrorView, ReplyEventView } from "../../../src/presenters/conversationTypes.ts";

export type { MessageStatus };
export type Conversation = ConversationView;
export type Message = MessageView;
export type ReplyError = ReplyErrorView;
export type ReplyEvent = ReplyEventView;

export type ReplyRequest =
  | { content: string; parent_id: string | null; model: string; thinking: boolean }
  | { regenerate: string; model: string; thinking: boolean };

export const listConversations = (q = "", cursor?: string) => {
  const params = new URLSearchParams({ limit: "100" });
  if (q) params.set("q", q);
  if (cursor) params.set("cursor", cursor);
  return api<{ data: Conversation[]; next_cursor: string | null }>("GET", `/api/conversations?${params}`);
};
export const createConversation = (model: string | null) => api<Conversation>("POST", "/api/conversations", { model });
export const getConversation = (id: string) =>
  api<{ conversation: Conversation; messages: Message[] }>("GET", `/api/conversations/${encodeURIComponent(id)}`);
export const renameConversation = (id: string, title: string) =>
  api<Conversation>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { title });
export const selectBranch = (id: string, messageId: string) =>
  api<Conversation>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, { current_message_id: messageId });
export const deleteConversation = (id: string) => api<void>("DELETE", `/api/conversations/${encodeURIComponent(id)}`);
export const stopReply = (id: string, messageId: string) =>
  api<Message>("POST", `/api/conversations/${encodeURIComponent(id)}/messages/${encodeURIComponent(messageId)}/stop`);

/**
 * Sends a message (or regenerates an answer) and calls `onEvent` for each server-sent event until
 * the stream ends. Throws ApiError when the server refuses before streaming (busy: 503/429 with
 * Retry-After), NetworkError when the connection breaks.
 */
export async function streamReply(
  conversationId: string,
  body: ReplyRequest,
  onEvent: (event: ReplyEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  // The SSE parser is needed only once something is sent: fetched beside the request, not with the first paint.
  const parserModule = import("eventsource-parser");
  parserModule.catch(() => undefined);
  const response = await request("POST", `/api/conversations/${encodeURIComponent(conversationId)}/messages`, body, {
    signal,
    headers: { accept: "text/event-stream" },
  });
  if (!response.body) throw new ApiError("The server sent no stream.", 502);
  let createParser: (typeof import("eventsource-parser"))["createParser"];
  try {
    ({ createParser } = await parserModule);
  } catch (error) {
    void response.body.cancel();
    throw new NetworkError(error);
  }
  const parser = createParser({
    onEvent: (event) => {
      let parsed: ReplyEvent;
      try {
        parsed = JSON.parse(event.data) as ReplyEvent;
      } catch {
        return; // not ours (a proxy's comment line): ignore
      }
      onEvent(parsed);
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new NetworkError(error);
  } finally {
    reader.releaseLock();
  }
}

/**
 * The web app's reply streams (a send's, a re-attach's): a chunk of its own, with the SSE parser,
 * fetched when a conversation first streams rather than with the first paint.
 */
import { createParser } from "eventsource-parser";
import type { ReplyEvent, ReplyRequest } from "./replyTypes.ts";
import { ApiError, NetworkError, request } from "./http.ts";

/**
 * Sends a message (or regenerates an answer) and calls `onEvent` for each server-sent event until
 * the stream ends. Throws ApiError when the server refuses before streaming (busy: 503/429 with
 * Retry-After), NetworkError when the connection breaks. Aborting `signal` only stops listening:
 * the answer goes on on the server (Stop is `stopReply`). Resolves with the last event id.
 */
export async function streamReply(
  conversationId: string,
  body: ReplyRequest,
  onEvent: (event: ReplyEvent, id: number | null) => void,
  signal: AbortSignal,
): Promise<number | null> {
  const response = await request("POST", `/api/conversations/${encodeURIComponent(conversationId)}/messages`, body, {
    signal,
    headers: { accept: "text/event-stream" },
  });
  return readEvents(response, onEvent);
}

/**
 * Re-attaches to an answer being written: a `snapshot` (the text so far) then live events, or the
 * events after `after` (an id from an earlier stream) while the server still holds them. An answer
 * no longer running gives one snapshot of what is stored. Throws as `streamReply`.
 */
export async function attachReply(
  conversationId: string,
  messageId: string,
  after: number | null,
  onEvent: (event: ReplyEvent, id: number | null) => void,
  signal: AbortSignal,
): Promise<number | null> {
  const query = after === null ? "" : `?after=${after}`;
  const response = await request("GET", `/api/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(messageId)}/stream${query}`, undefined, {
    signal,
    headers: { accept: "text/event-stream" },
  });
  return readEvents(response, onEvent);
}

async function readEvents(response: Response, onEvent: (event: ReplyEvent, id: number | null) => void): Promise<number | null> {
  if (!response.body) throw new ApiError("The server sent no stream.", 502);
  let lastId: number | null = null;
  const parser = createParser({
    onEvent: (event) => {
      let parsed: ReplyEvent;
      try {
        parsed = JSON.parse(event.data) as ReplyEvent;
      } catch {
        return; // not ours (a proxy's comment line): ignore
      }
      const id = event.id === undefined ? null : Number(event.id);
      if (id !== null && Number.isFinite(id)) lastId = id;
      onEvent(parsed, lastId);
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
  return lastId;
}

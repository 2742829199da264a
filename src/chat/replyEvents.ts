import type { Searched, Source } from "../search/source.ts";
import type { Message } from "./conversations.ts";

/** What the web app's streaming endpoint sends, one JSON object per SSE `data:` line. */
export type ReplyEvent =
  | { type: "start"; user_message: Message | null; assistant_message: Message }
  /** While the request waits for a free slot (sent by the admission queue when there is one). */
  | { type: "queue"; position: number; estimated_wait_s: number }
  /** With search or documents: what was found (sent after `start`, before the reasoning). */
  | { type: "sources"; sources: Source[]; searched: Searched }
  /**
   * First event to a watcher attaching to a running reply (a reload, another tab): the answer as it
   * stands (text so far, status streaming unless it just ended), the place in line, and the
   * reasoning time so far. Live events follow.
   */
  | { type: "snapshot"; message: Message; queue: { position: number; estimated_wait_s: number } | null; reasoning_ms: number | null; reasoning_done: boolean }
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  | { type: "title"; conversation_id: string; title: string }
  | { type: "done"; message: Message }
  | { type: "error"; error: ReplyError; message: Message };

export interface ReplyError {
  message: string;
  code: string;
  /** The HTTP status the same failure would have had before streaming began (503 = busy). */
  status: number;
  /** Seconds after which a retry may succeed (busy or rate-limited). */
  retry_after_s?: number;
}

/** Either a new user message after `parentId`, or another answer to the user message `target` answers. */
export type ReplyInput =
  | { kind: "send"; content: string; parentId: string | null }
  | { kind: "regenerate"; target: Message };

/**
 * The web app API's conversation shapes, declared once: the presenters produce them
 * (src/presenters/conversation.ts) and the web app imports them as types (web/src/api/), so the
 * two cannot drift. No imports: the web app's type check (and its bundle) reads this file on its own.
 */
export type MessageStatus = "complete" | "streaming" | "stopped" | "error" | "interrupted";

export interface ConversationView {
  id: string;
  title: string | null;
  model: string | null;
  current_message_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface MessageView {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: "user" | "assistant";
  content: string;
  reasoning: string;
  model: string | null;
  thinking: boolean;
  status: MessageStatus;
  error: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  ttft_ms: number | null;
  reasoning_ms: number | null;
  total_ms: number | null;
  created_at: string;
  updated_at: string;
}

export interface ReplyErrorView {
  message: string;
  code: string;
  /** The HTTP status the same failure would have had before streaming began (503 = busy). */
  status: number;
  /** Seconds after which a retry may succeed (busy or rate-limited). */
  retry_after_s?: number;
}

/** Events of POST /api/conversations/:id/messages (and of GET …/messages/:id/stream), one per SSE `data:` line. */
export type ReplyEventView =
  | { type: "start"; user_message: MessageView | null; assistant_message: MessageView }
  | { type: "queue"; position: number; estimated_wait_s: number }
  /** First event of GET …/messages/:id/stream: the answer so far; live events follow. */
  | { type: "snapshot"; message: MessageView; queue: { position: number; estimated_wait_s: number } | null; reasoning_ms: number | null; reasoning_done: boolean }
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  | { type: "title"; conversation_id: string; title: string }
  | { type: "done"; message: MessageView }
  /** `message` is absent when the failure came before the answer was stored. */
  | { type: "error"; error: ReplyErrorView; message?: MessageView };

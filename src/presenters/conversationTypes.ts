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
  /** The reply settings every answer of this conversation is generated with (null: the model's default). */
  settings: ConversationSettingsView;
  /** When it was pinned (pinned conversations list first); null: not pinned. */
  pinned_at: string | null;
}

export interface ConversationSettingsView {
  system_prompt: string | null;
  temperature: number | null;
  /** The most tokens one answer may have, reasoning included. */
  max_tokens: number | null;
  /** The most reasoning tokens one answer may have (the plan's cap applies too). */
  thinking_budget: number | null;
}

/** GET /api/conversations/:id/settings: the settings and the bounds the panel shows. */
export interface ConversationSettingsResponse {
  settings: ConversationSettingsView;
  limits: { max_system_prompt_chars: number; max_tokens: number; max_thinking_budget: number | null };
}

/** One row of the sidebar's search: the conversation, and the newest message that matched (null: the title did). */
export interface ConversationSearchView extends ConversationView {
  match: {
    message_id: string;
    role: "user" | "assistant";
    /** Plain text around the match (never HTML). */
    snippet: string;
    /** [start, end) character offsets of the query's words in `snippet`. */
    highlights: Array<[number, number]>;
  } | null;
}

/** A live read-only link, as its owner sees it (the token itself only once, at creation). */
export interface ConversationShareView {
  id: string;
  include_reasoning: boolean;
  show_author: boolean;
  created_at: string;
  /** Only in the answer that created it: the link's path, `/s/<token>`. */
  path?: string;
}

/** GET /api/shared/:token: what anyone with the link sees, and nothing else of the account. */
export interface SharedConversationView {
  title: string | null;
  /** The owner's user name, only when they chose to show it. */
  author: string | null;
  shared_at: string;
  messages: Array<{
    role: "user" | "assistant";
    content: string;
    /** Only when the owner chose to include reasoning; otherwise absent. */
    reasoning?: string;
    model: string | null;
    /** Set on answers that did not finish (stopped, interrupted, failed). */
    status: "complete" | "stopped" | "error" | "interrupted";
    created_at: string;
    /** Answers that read sources: what their `[n]` cite. Absent otherwise. */
    sources?: SharedSourceView[];
  }>;
}

/**
 * A source as a shared link shows it: a web page with its address; a document by its file name
 * only — no id, no download (the visitor may not read the owner's files), no passage of it.
 */
export type SharedSourceView = Pick<SourceView, "index" | "kind" | "url" | "title" | "filename">;

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
  /**
   * What the server's moderation policies did to this answer (src/moderation); null when nothing
   * intervened. Optional only for messages the web app makes up while it waits for the server.
   */
  moderation?: ModerationView | null;
  /**
   * The sources this answer cites as [1], [2]… (search and documents); null without search.
   * Optional only for messages the web app makes up while it waits for the server.
   */
  sources?: SourceView[] | null;
}

/** One source an answer cites: `index` is the n of `[n]` in its text. Plain text, never HTML. */
export interface SourceView {
  index: number;
  kind: "web" | "file";
  /** Web sources: the page. */
  url?: string;
  title: string;
  /** File sources: the document (GET /api/files/:id). */
  file_id?: string;
  filename?: string;
  /** The passage the answer was given from this source (shortened). */
  snippet: string;
}

/** What was searched for an answer: "Searched N pages / read N documents". */
export interface SearchedView {
  query: string;
  pages: number;
  documents: number;
  /** Some documents were still being indexed: only what was indexed was read. */
  indexing: boolean;
}

/** One intervention of a moderation policy, as users see it. */
export interface ModerationInterventionView {
  policy: string;
  action: "warn" | "withhold";
  /** `input`: what the user sent; `output`: what the model wrote. */
  stage: "input" | "output";
  /** Output: which part of the answer the intervention was found in. */
  channel: "content" | "reasoning" | null;
  /** Output: characters of that part shown before the intervention (they stay shown). */
  offset: number;
  reason: string;
  /** The sentence to show: "Withheld by this server's policy '<name>': <reason>". */
  notice: string;
}

/** The moderation of one answer: `withheld` when a withhold policy ended it (what was shown before stays). */
export interface ModerationView {
  withheld: boolean;
  interventions: ModerationInterventionView[];
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
  /** With search or documents: what was found, after `start` and before the reasoning. */
  | { type: "sources"; sources: SourceView[]; searched: SearchedView }
  /** First event of GET …/messages/:id/stream: the answer so far; live events follow. */
  | { type: "snapshot"; message: MessageView; queue: { position: number; estimated_wait_s: number } | null; reasoning_ms: number | null; reasoning_done: boolean }
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  | { type: "title"; conversation_id: string; title: string }
  | { type: "done"; message: MessageView }
  /** `message` is absent when the failure came before the answer was stored. */
  | { type: "error"; error: ReplyErrorView; message?: MessageView };

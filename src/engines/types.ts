/**
 * The one interface every engine implements. Routes, the admission queue and the ledger only
 * ever see these types, so a local llama.cpp model and a remote vLLM upstream are interchangeable.
 */

export type ChatRole = "system" | "user" | "assistant" | "tool";

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Reasoning of an earlier assistant turn. Kept for display only: engines never feed it back. */
  reasoning_content?: string | null;
  name?: string;
}

export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name?: string; schema: Record<string, unknown>; strict?: boolean } };

export interface GenerationRequest {
  /** Public model name, as in /v1/models. */
  model: string;
  messages: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  responseFormat?: ResponseFormat;
  /** Upper bound on reasoning tokens; undefined means the model's/operator's default. */
  thinkingBudget?: number;
  /** When false, the engine asks the model not to reason (where the model allows it). */
  thinking?: boolean;
  signal?: AbortSignal;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose KV state was really reused (not an estimate). */
  prompt_cache_hit_tokens: number;
  /** Prompt tokens that were really evaluated. */
  prompt_cache_miss_tokens: number;
  completion_tokens_details: { reasoning_tokens: number };
  prompt_tokens_details: { cached_tokens: number };
}

export type FinishReason = "stop" | "length" | "abort" | "error";

export type EngineEvent =
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  | { type: "usage"; usage: Usage }
  | { type: "done"; finishReason: FinishReason }
  | { type: "error"; error: EngineError };

export interface ModelInfo {
  /** Public name used by clients. */
  id: string;
  engine: "local" | "remote";
  ownedBy: string;
  contextLength?: number;
  /** True when the model reasons (<think>…</think>). */
  reasoning: boolean;
  /** Human note, e.g. why the demo model is being served. */
  note?: string;
}

export interface EngineHealth {
  ok: boolean;
  detail: string;
}

export interface Engine {
  readonly kind: "local" | "remote";
  /** Models this engine serves. */
  models(): ModelInfo[];
  /** Streams events for one generation. Throws EngineError before the first event for request errors. */
  generate(request: GenerationRequest): AsyncIterable<EngineEvent>;
  /** Throws EngineError for a request that cannot be served (e.g. too long), before it is queued. */
  preflight?(request: GenerationRequest): void;
  /** A real probe of the engine. */
  health(): Promise<EngineHealth>;
  close(): Promise<void>;
}

/** Error carrying an OpenAI-style error description; the HTTP layer maps it to a response. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly param: string | null = null,
    readonly type: string = status >= 500 ? "server_error" : "invalid_request_error",
  ) {
    super(message);
    this.name = "EngineError";
  }
}

export function emptyUsage(): Usage {
  return {
    prompt_tokens: 0,
    completion_tokens: 0,
    total_tokens: 0,
    prompt_cache_hit_tokens: 0,
    prompt_cache_miss_tokens: 0,
    completion_tokens_details: { reasoning_tokens: 0 },
    prompt_tokens_details: { cached_tokens: 0 },
  };
}

/** What a local model's engine has done since start, read at scrape time (LocalModel.stats()). */
export interface EngineActivity {
  model: string;
  /** llama_decode batches, the tokens they carried, and those shared by two or more sequences. */
  batches: number;
  batchTokens: number;
  sharedBatches: number;
  /** Answers re-read in next-turn form after their request: completed, abandoned, tokens evaluated. */
  rereadsCompleted: number;
  rereadsAbandoned: number;
  rereadTokens: number;
}

import { ServiceError, type ErrorKind } from "../errors.ts";

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
  /** An assistant turn's tool calls (fed back to the model; its reasoning is not). */
  tool_calls?: ToolCall[];
  /** A `tool` message: the call it answers. */
  tool_call_id?: string;
  /**
   * The last message only, role assistant: the answer starts with this text and the model
   * continues it (DeepSeek's chat prefix completion).
   */
  prefix?: boolean;
}

/** A function the model may call (OpenAI's `tools[].function`). */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
  /** Arguments must match `parameters` exactly: engines that can, constrain them with a grammar. */
  strict?: boolean;
}

/** OpenAI's `tool_choice`: none, auto (default with tools), required, or one named function. */
export type ToolChoice = "none" | "auto" | "required" | { name: string };

/** One call the model made: arguments are a JSON text, as OpenAI sends them. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** One sampled token with its log-probability and the most likely alternatives (OpenAI's shape, camel-cased). */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top: Array<{ token: string; logprob: number; bytes: number[] }>;
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
  /** Sample only among the K most likely tokens (Anthropic's `top_k`); undefined: no such cut. */
  topK?: number;
  seed?: number;
  stop?: string[];
  responseFormat?: ResponseFormat;
  /** Upper bound on reasoning tokens; undefined means the model's/operator's default. */
  thinkingBudget?: number;
  /** When false, the engine asks the model not to reason (where the model allows it). */
  thinking?: boolean;
  /** Functions the model may call; absent or empty: none. */
  tools?: ToolDefinition[];
  /** Default: "auto" when tools are given. */
  toolChoice?: ToolChoice;
  /** Default true: the model may call several functions in one turn. */
  parallelToolCalls?: boolean;
  /** OpenAI's penalties (−2…2) and logit bias (token id → −100…100); an engine that cannot honour one refuses it. */
  frequencyPenalty?: number;
  presencePenalty?: number;
  logitBias?: Record<string, number>;
  /** Return log-probabilities of sampled tokens with this many alternatives each (0–20). */
  logprobs?: { top: number };
  /**
   * A raw-text completion (/v1/completions), not a chat: `prompt` is the model's input as it is,
   * with no chat template, and `messages` is empty. With `suffix`, fill-in-the-middle in the
   * model's own FIM format (engines whose model has none refuse it, naming `suffix`).
   */
  completion?: { prompt: string; suffix?: string };
  /**
   * What ties this request to earlier ones (the web app's conversation id): an engine fronting
   * several replicas sends requests with one key to the replica that already holds their prefix.
   */
  routingKey?: string;
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

/** `content_filter`: never an engine's own; the pipeline's output moderation ended the answer (src/moderation/outputCheck.ts). */
export type FinishReason = "stop" | "length" | "tool_calls" | "abort" | "error" | "content_filter";

export type EngineEvent =
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  /** A tool call begins (`index` counts calls in this answer from 0); its arguments follow as deltas. */
  | { type: "tool_call"; index: number; id: string; name: string }
  | { type: "tool_call_arguments"; index: number; text: string }
  /** Log-probabilities of tokens just streamed on one channel (sent before or with their text). */
  | { type: "logprobs"; channel: "content" | "reasoning"; tokens: TokenLogprob[] }
  | { type: "usage"; usage: Usage }
  /** `stopSequence`: which of the request's `stop` strings ended it, when the engine knows (Anthropic reports it). */
  | { type: "done"; finishReason: FinishReason; stopSequence?: string }
  | { type: "error"; error: ServiceError };

export interface ModelInfo {
  /** Public name used by clients. */
  id: string;
  /** The kind of engine serving it (a name from the engine registry), for logs and the request log only. */
  engine: string;
  ownedBy: string;
  contextLength?: number;
  /** True when the model reasons (<think>…</think>). */
  reasoning: boolean;
  /** Human note, e.g. why the demo model is being served. */
  note?: string;
  /**
   * For upstream models, once an answer came back: whether the upstream reports prompt-cache hits
   * (`none`: it does not, so every prompt token is billed as a miss). See src/engines/remote/cacheReporting.ts.
   */
  cacheReporting?: "reported" | "none" | "partial";
  /**
   * Present when the model answers /v1/embeddings (Engine.embed); `dimensions`: the length of its
   * vectors, when known here (a local model's; an upstream's is the upstream's business).
   */
  embedding?: { dimensions?: number };
}

/** One /v1/embeddings request as engines see it: texts or token-id arrays, embedded in order. */
export interface EmbeddingRequest {
  /** Public model name, as in /v1/models. */
  model: string;
  /** At least one; each text non-empty, each token array non-empty (bounded by the route before any tokenizing). */
  input: Array<string | number[]>;
  /** OpenAI's `dimensions`: a local model refuses any other than its own; an upstream is passed it. */
  dimensions?: number;
  /** OpenAI's `user`, passed to an upstream as it is. */
  user?: string;
  signal?: AbortSignal;
}

/** The vectors of an EmbeddingRequest's inputs, in input order, and the tokens evaluated for them. */
export interface Embeddings {
  data: number[][];
  promptTokens: number;
}

export interface EngineHealth {
  ok: boolean;
  detail: string;
}

/**
 * A request checked and measured by its engine, once: `generate` reuses it, so a prompt is
 * tokenized once per request however many stages need its size.
 */
export interface PreparedRequest {
  readonly model: ModelInfo;
  /** Prompt tokens as the engine will evaluate them; an upper bound when `exact` is false. */
  readonly promptTokens: number;
  readonly exact: boolean;
  /** Tokens left in the context after the prompt, when the engine knows its context. */
  readonly room: number | undefined;
  /** Engine-private state (the local engine's tokens), opaque to every caller. */
  readonly state?: unknown;
}

export interface Engine {
  /** The registry name of this engine's kind (src/engines/registry.ts); informational. */
  readonly kind: string;
  /** Models this engine serves. */
  models(): ModelInfo[];
  /**
   * Cheap checks that need no tokenizing (e.g. a prompt whose bytes cannot fit however it is
   * tokenized). Throws EngineError. Runs before rate limits and admission.
   */
  inspect?(request: GenerationRequest): void;
  /** Tokenizes/counts the prompt once and checks it fits the context; throws EngineError if not. */
  prepare(request: GenerationRequest): PreparedRequest;
  /**
   * Streams events for one generation; `prepared` (from `prepare` on the same messages) saves
   * tokenizing again. Throws EngineError before the first event for request errors.
   */
  generate(request: GenerationRequest, prepared?: PreparedRequest): AsyncIterable<EngineEvent>;
  /**
   * Cheap checks of an embedding request that need no tokenizing (token ids in the vocabulary, texts
   * whose bytes cannot fit the context however tokenized). Throws EngineError. Runs before admission.
   */
  inspectEmbedding?(request: EmbeddingRequest): void;
  /**
   * Embeds the inputs, in order (engines whose ModelInfo has `embedding`). Throws EngineError for
   * request errors (an input longer than the context: 400 naming `input`).
   */
  embed?(request: EmbeddingRequest): Promise<Embeddings>;
  /** Requests this model runs at once (what its admission queue lets through); undefined: unbounded/unknown. */
  capacity(model: string): number | undefined;
  /** What the engine has done since start, per model (for /metrics); empty when it keeps no such figures. */
  stats(): EngineActivity[];
  /** A real probe of the engine. */
  health(): Promise<EngineHealth>;
  close(): Promise<void>;
}

/**
 * An engine's refusal or failure, with the status an OpenAI-compatible server would give it (kept
 * because upstream engines speak HTTP); its `kind` is what the rest of Sputnik reads.
 */
export class EngineError extends ServiceError {
  constructor(
    message: string,
    readonly status: number,
    code: string,
    param: string | null = null,
    readonly type: string = status >= 500 ? "server_error" : "invalid_request_error",
  ) {
    super(kindOfStatus(status), message, { code, param });
    this.name = "EngineError";
  }
}

function kindOfStatus(status: number): ErrorKind {
  switch (status) {
    case 400:
      return "invalid_request";
    case 401:
      return "unauthenticated";
    case 402:
      return "insufficient_balance";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 413:
      return "too_large";
    case 422:
      return "unprocessable";
    case 429:
      return "rate_limited";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? (status === 500 ? "internal" : "upstream") : "invalid_request";
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

/** What an engine has done for one model since start, read at scrape time. */
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
  /** Request prompts tokenized (one per request: prepare's tokens are reused by generate). */
  promptTokenizations: number;
  /** The upstream replicas serving the model, for engines that front several (src/engines/fleet/). */
  replicas?: ReplicaState[];
  /** How long the engine took to route each request, since start (engines that route: src/engines/fleet/). */
  routingSeconds?: LatencyCounts;
}

/** A latency histogram's running totals: `counts[i]` observations took at most `bounds[i]` seconds (cumulative). */
export interface LatencyCounts {
  bounds: readonly number[];
  counts: number[];
  sum: number;
  count: number;
}

/** One upstream replica of a model as this gateway sees it, read at scrape and /health time. */
export interface ReplicaState {
  /** The operator's name for it (never its URL: /health is public). */
  name: string;
  /** Last active probe: `unknown` until the first one answers. */
  probe: "unknown" | "up" | "down";
  /** Circuit breaker fed by real requests: `open` takes it out of rotation until a probe succeeds after the cool-down. */
  breaker: "closed" | "open" | "half_open";
  /** Whether new requests may be routed to it now. */
  inRotation: boolean;
  /** Requests this gateway has running on it now. */
  inFlight: number;
  maxConcurrency: number;
  consecutiveFailures: number;
  /** Since start: requests sent to it, and those that failed on it (connect, timeout, 5xx, broken stream). */
  requests: number;
  failures: number;
  /** The last reading of its engine's own metrics, where the model's `metrics` is configured. */
  signals?: ReplicaSignals;
  /** Whether its answers carry prompt-cache figures; absent until one came back. */
  cacheReporting?: "reported" | "none" | "partial";
}

/** A replica's load as its engine reports it (src/engines/fleet/loadSignals.ts). */
export interface ReplicaSignals {
  /** Whose metric names were found (vllm, sglang, llamacpp, sputnik); null before a reading. */
  source: string | null;
  /** Requests waiting in the engine's queue, running on it, and its KV-cache usage (0–1); null: not exported. */
  waiting: number | null;
  running: number | null;
  kvUsage: number | null;
  /** Since the last good reading; null: none yet. */
  ageMs: number | null;
  /** Why the last read failed (no answer, non-2xx, no known gauges); null when it succeeded. */
  error: string | null;
}

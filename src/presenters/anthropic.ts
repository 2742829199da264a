import { createHash, randomBytes } from "node:crypto";
import type { FinishReason, ModelInfo, ToolCall, Usage } from "../engines/types.ts";

/**
 * API shapes of Anthropic's Messages protocol (served at /anthropic, as DeepSeek serves it), in
 * one place: the message object, its content blocks, the stream's events, usage, errors, models.
 */

export function messageId(): string {
  return `msg_${randomBytes(12).toString("hex")}`;
}

export type AnthropicStopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal";

/** How an answer ended, in Anthropic's words; `stopSequence` is the stop string that ended it, when known. */
export function presentStopReason(reason: FinishReason, stopSequence: string | undefined): AnthropicStopReason {
  if (reason === "length") return "max_tokens";
  if (reason === "tool_calls") return "tool_use";
  // A moderation policy withheld the rest: Anthropic's word for an answer its classifiers ended.
  if (reason === "content_filter") return "refusal";
  if (stopSequence !== undefined) return "stop_sequence";
  // A stopped ("abort") or failed generation simply ended, as OpenAI's surface says too.
  return "end_turn";
}

/**
 * Usage in Anthropic's meaning. Anthropic counts prompt tokens read from its cache apart from the
 * others: `input_tokens` are the prompt tokens NOT read from the cache (our
 * `prompt_cache_miss_tokens`) and `cache_read_input_tokens` those that were (our
 * `prompt_cache_hit_tokens`), so input_tokens + cache_read_input_tokens = prompt_tokens.
 * Nothing is billed as a cache write (Sputnik's cache needs no opt-in and costs nothing extra),
 * so `cache_creation_input_tokens` is 0. `output_tokens` includes reasoning, as Anthropic's does;
 * `output_tokens_details.thinking_tokens` is the reasoning part.
 */
export function presentUsage(usage: Usage) {
  return {
    input_tokens: usage.prompt_cache_miss_tokens,
    output_tokens: usage.completion_tokens,
    cache_read_input_tokens: usage.prompt_cache_hit_tokens,
    cache_creation_input_tokens: 0,
    output_tokens_details: { thinking_tokens: usage.completion_tokens_details.reasoning_tokens },
  };
}

/**
 * The `signature` Anthropic attaches to a thinking block so that a client can send it back
 * unchanged. Sputnik never feeds earlier reasoning back to the model (it drops thinking blocks it
 * is sent), so nothing verifies it: it is a digest of the text, stable for the same thinking.
 */
export function thinkingSignature(thinking: string): string {
  return createHash("sha256").update(thinking, "utf8").digest("base64");
}

/**
 * A tool call's arguments as Anthropic's `input` object. Engines deliver valid JSON objects (a
 * malformed call is returned as text, see src/engines/types.ts); anything else is kept whole
 * under `arguments` rather than lost.
 */
export function toolInput(argumentsText: string): Record<string, unknown> {
  if (argumentsText.trim() === "") return {};
  try {
    const parsed: unknown = JSON.parse(argumentsText);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // kept as text below
  }
  return { arguments: argumentsText };
}

export type ContentBlock =
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> };

/**
 * The content of one answer in Anthropic's order: thinking, text, tool calls. There is always a
 * text or tool_use block (an empty answer is one empty text block), so `content` is never only
 * thinking — the streamed form ends the same way. The notices of moderation policies that
 * intervened (src/moderation) come last, as a text block of their own: Anthropic's shape has no
 * field for them, and a notice must be visible in any client.
 */
export function contentBlocks(input: { reasoning: string; content: string; toolCalls: ToolCall[]; notices?: readonly string[] }): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  const notices = input.notices ?? [];
  if (input.reasoning) blocks.push({ type: "thinking", thinking: input.reasoning, signature: thinkingSignature(input.reasoning) });
  if (input.content || (input.toolCalls.length === 0 && notices.length === 0)) blocks.push({ type: "text", text: input.content });
  for (const call of input.toolCalls) blocks.push({ type: "tool_use", id: call.id, name: call.name, input: toolInput(call.arguments) });
  if (notices.length > 0) blocks.push({ type: "text", text: noticeText(notices) });
  return blocks;
}

/** The text block moderation notices are shown in, one per line. */
export function noticeText(notices: readonly string[]): string {
  return notices.join("\n");
}

export function presentMessage(input: {
  id: string;
  model: string;
  content: ContentBlock[];
  finishReason: FinishReason;
  stopSequence: string | undefined;
  usage: Usage;
}) {
  return {
    id: input.id,
    type: "message" as const,
    role: "assistant" as const,
    model: input.model,
    content: input.content,
    stop_reason: presentStopReason(input.finishReason, input.stopSequence),
    stop_sequence: input.stopSequence ?? null,
    usage: presentUsage(input.usage),
  };
}

/** The stream's first event: the message with no content and usage still unknown (it comes with message_delta). */
/**
 * The stream's first event. Its `input_tokens` is the whole prompt as counted before the answer
 * began: which part of it the engine could reuse is known only once it ran, so the split into
 * `input_tokens` and `cache_read_input_tokens` comes in `message_delta` (which clients merge last).
 */
export function presentMessageStart(input: { id: string; model: string; promptTokens: number }) {
  return {
    type: "message_start" as const,
    message: {
      id: input.id,
      type: "message" as const,
      role: "assistant" as const,
      model: input.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: input.promptTokens, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
    },
  };
}

/** An empty block as content_block_start announces it. */
export type StartedBlock =
  | { type: "thinking"; thinking: ""; signature: "" }
  | { type: "text"; text: "" }
  | { type: "tool_use"; id: string; name: string; input: Record<string, never> };

export type BlockDelta =
  | { type: "thinking_delta"; thinking: string }
  | { type: "signature_delta"; signature: string }
  | { type: "text_delta"; text: string }
  | { type: "input_json_delta"; partial_json: string };

export function presentBlockStart(index: number, block: StartedBlock) {
  return { type: "content_block_start" as const, index, content_block: block };
}

export function presentBlockDelta(index: number, delta: BlockDelta) {
  return { type: "content_block_delta" as const, index, delta };
}

export function presentBlockStop(index: number) {
  return { type: "content_block_stop" as const, index };
}

/** The stream's last data: how it ended and the whole answer's usage (cumulative, as Anthropic sends it). */
export function presentMessageDelta(input: { finishReason: FinishReason; stopSequence: string | undefined; usage: Usage }) {
  return {
    type: "message_delta" as const,
    delta: { stop_reason: presentStopReason(input.finishReason, input.stopSequence), stop_sequence: input.stopSequence ?? null },
    usage: presentUsage(input.usage),
  };
}

export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "billing_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "timeout_error"
  | "api_error"
  | "overloaded_error";

export function presentError(type: AnthropicErrorType, message: string) {
  return { type: "error" as const, error: { type, message } };
}

/** A model as Anthropic's GET /v1/models lists it. */
export function presentModel(model: ModelInfo, createdAt: string) {
  return { type: "model" as const, id: model.id, display_name: model.id, created_at: createdAt };
}

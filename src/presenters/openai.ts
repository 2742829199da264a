import { randomBytes } from "node:crypto";
import type { FinishReason, ModelInfo, ToolCall, Usage } from "../engines/types.ts";
import type { Annotation } from "../search/citations.ts";
import type { ModerationView } from "./conversationTypes.ts";

/** API shapes of the OpenAI/DeepSeek chat completions protocol, in one place. */

export function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString("hex")}`;
}

/**
 * OpenAI knows no "abort": a stopped generation simply ended. `content_filter` is OpenAI's own word
 * for an answer a moderation policy ended (the `moderation` object says which and why).
 */
export function presentFinishReason(reason: FinishReason): "stop" | "length" | "tool_calls" | "content_filter" {
  return reason === "length" || reason === "tool_calls" || reason === "content_filter" ? reason : "stop";
}

/** `message.tool_calls` of a completion: OpenAI's shape, arguments as JSON text. */
export function presentToolCalls(calls: readonly ToolCall[]) {
  return calls.map((call) => ({ id: call.id, type: "function" as const, function: { name: call.name, arguments: call.arguments } }));
}

/** One streamed tool-call piece (`delta.tool_calls[]`): id, type and name once, then argument fragments. */
export type ToolCallDelta =
  | { index: number; id: string; type: "function"; function: { name: string; arguments: string } }
  | { index: number; function: { arguments: string } };

export function presentCompletion(input: {
  id: string;
  created: number;
  model: string;
  content: string;
  reasoning: string;
  reasoningModel: boolean;
  finishReason: FinishReason;
  usage: Usage;
  /** `choices[0].logprobs` (see presenters/logprobs.ts); null when not asked for. */
  logprobs?: object | null;
  /** Calls the model made (finish_reason "tool_calls"). */
  toolCalls?: readonly ToolCall[];
  /** What the server's moderation policies did (an extension field of the message); null: nothing. */
  moderation?: ModerationView | null;
  /** Citations of the sources search found (src/search/citations.ts); absent without search. */
  annotations?: Annotation[] | null;
}) {
  return {
    id: input.id,
    object: "chat.completion" as const,
    created: input.created,
    model: input.model,
    system_fingerprint: "sputnik",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant" as const,
          content: input.content,
          ...(input.reasoningModel ? { reasoning_content: input.reasoning } : {}),
          ...(input.toolCalls && input.toolCalls.length > 0 ? { tool_calls: presentToolCalls(input.toolCalls) } : {}),
          ...(input.moderation ? { moderation: input.moderation } : {}),
          ...(input.annotations ? { annotations: input.annotations } : {}),
        },
        logprobs: input.logprobs ?? null,
        finish_reason: presentFinishReason(input.finishReason),
      },
    ],
    usage: input.usage,
  };
}

export function presentChunk(input: {
  id: string;
  created: number;
  model: string;
  /** `moderation`: the last chunk before the finish chunk, when a moderation policy intervened. */
  /** `annotations`: the answer's citations, on a chunk of their own before the finish chunk (with search). */
  delta: { role?: "assistant"; content?: string | null; reasoning_content?: string | null; tool_calls?: ToolCallDelta[]; moderation?: ModerationView; annotations?: Annotation[] };
  finishReason?: FinishReason | null;
  logprobs?: object | null;
}) {
  return {
    id: input.id,
    object: "chat.completion.chunk" as const,
    created: input.created,
    model: input.model,
    system_fingerprint: "sputnik",
    choices: [
      {
        index: 0,
        delta: input.delta,
        logprobs: input.logprobs ?? null,
        finish_reason: input.finishReason ? presentFinishReason(input.finishReason) : null,
      },
    ],
  };
}

export function presentUsageChunk(input: { id: string; created: number; model: string; usage: Usage }) {
  return {
    id: input.id,
    object: "chat.completion.chunk" as const,
    created: input.created,
    model: input.model,
    system_fingerprint: "sputnik",
    choices: [],
    usage: input.usage,
  };
}

export function presentModel(model: ModelInfo, created: number) {
  return {
    id: model.id,
    object: "model" as const,
    created,
    owned_by: model.ownedBy,
    // Extensions (ignored by OpenAI clients): what serves it and what the operator should know.
    engine: model.engine,
    reasoning: model.reasoning,
    ...(model.contextLength ? { context_length: model.contextLength } : {}),
    ...(model.note ? { note: model.note } : {}),
    // Known once an answer came back; `none`: the upstream reports no cache hits, all are billed as misses.
    ...(model.cacheReporting ? { cache_reporting: model.cacheReporting } : {}),
    // Served on /v1/embeddings, with its vectors' length when known here.
    ...(model.embedding ? { embeddings: true, ...(model.embedding.dimensions !== undefined ? { embedding_dimensions: model.embedding.dimensions } : {}) } : {}),
  };
}

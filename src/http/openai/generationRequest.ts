import type { ChatCompletionBody } from "./chatCompletionSchema.ts";
import type { ChatMessage, GenerationRequest } from "../../engines/types.ts";
import { toolFields, toToolCalls } from "./toolSchemas.ts";
import { chatLogprobs, checkPrefix } from "./paramSchemas.ts";

/** Reasoning-token budgets behind DeepSeek/OpenAI's `reasoning_effort` levels; `high` is unbounded. */
export const REASONING_EFFORT_BUDGETS = { low: 512, medium: 2048, high: undefined } as const;

/**
 * Maps an API body onto the engine's request: message roles normalised (OpenAI's `developer` is a
 * system message), earlier reasoning dropped, and the thinking budget resolved from
 * `thinking.budget_tokens` first, then `reasoning_effort`.
 */
export function toGenerationRequest(body: ChatCompletionBody, signal?: AbortSignal): GenerationRequest {
  const prefixed = checkPrefix(body.messages);
  const messages: ChatMessage[] = body.messages.map((m) => {
    const role = m.role === "developer" ? "system" : m.role;
    // reasoning_content of earlier turns is deliberately not copied: it is never fed back.
    // Their tool calls are: the model sees which functions it called and what they returned.
    const toolCalls = m.role === "assistant" ? toToolCalls(m.tool_calls) : undefined;
    const toolCallId = m.role === "tool" ? m.tool_call_id : undefined;
    return { role, content: m.content ?? "", ...(m.name ? { name: m.name } : {}), ...(toolCalls ? { tool_calls: toolCalls } : {}), ...(toolCallId ? { tool_call_id: toolCallId } : {}) };
  });
  if (prefixed) messages[messages.length - 1]!.prefix = true;
  const logprobs = chatLogprobs(body);
  const stop = body.stop == null ? undefined : Array.isArray(body.stop) ? body.stop : [body.stop];
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const thinkingDisabled = body.thinking?.type === "disabled";
  const thinkingBudget =
    body.thinking?.budget_tokens ?? (body.reasoning_effort ? REASONING_EFFORT_BUDGETS[body.reasoning_effort] : undefined);
  return {
    model: body.model,
    messages,
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(body.seed != null ? { seed: body.seed } : {}),
    ...(stop ? { stop } : {}),
    ...(body.response_format ? { responseFormat: body.response_format } : {}),
    ...(thinkingBudget !== undefined ? { thinkingBudget } : {}),
    ...(thinkingDisabled ? { thinking: false } : {}),
    ...(body.frequency_penalty ? { frequencyPenalty: body.frequency_penalty } : {}),
    ...(body.presence_penalty ? { presencePenalty: body.presence_penalty } : {}),
    ...(body.logit_bias && Object.keys(body.logit_bias).length > 0 ? { logitBias: body.logit_bias } : {}),
    ...(logprobs ? { logprobs } : {}),
    ...toolFields(body),
    ...(signal ? { signal } : {}),
  };
}

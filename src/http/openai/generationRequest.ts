import type { ChatCompletionBody } from "./chatCompletionSchema.ts";
import type { ChatMessage, GenerationRequest } from "../../engines/types.ts";

/** Reasoning-token budgets behind DeepSeek/OpenAI's `reasoning_effort` levels; `high` is unbounded. */
export const REASONING_EFFORT_BUDGETS = { low: 512, medium: 2048, high: undefined } as const;

/**
 * Maps an API body onto the engine's request: message roles normalised (OpenAI's `developer` is a
 * system message), earlier reasoning dropped, and the thinking budget resolved from
 * `thinking.budget_tokens` first, then `reasoning_effort`.
 */
export function toGenerationRequest(body: ChatCompletionBody, signal?: AbortSignal): GenerationRequest {
  const messages: ChatMessage[] = body.messages.map((m) => {
    const role = m.role === "developer" ? "system" : m.role;
    // reasoning_content of earlier turns is deliberately not copied: it is never fed back.
    return { role, content: m.content ?? "", ...(m.name ? { name: m.name } : {}) };
  });
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
    ...(signal ? { signal } : {}),
  };
}

import type { ChatMessage, GenerationRequest, ToolCall, ToolChoice } from "../../engines/types.ts";
import type { CountTokensBody, MessagesBody } from "./messagesSchema.ts";

type Block = Extract<MessagesBody["messages"][number], { role: "user" }>["content"][number];
type AssistantBlock = Extract<MessagesBody["messages"][number], { role: "assistant" }>["content"][number];

/**
 * Maps an Anthropic Messages body onto the engine's request, the same one /v1/chat/completions
 * builds for the same conversation:
 * - `system` (a string or text blocks) is the first, system message;
 * - a user turn's `tool_result` blocks become `tool` messages (in order, before the turn's text,
 *   as OpenAI-style templates expect them right after the assistant's calls);
 * - an assistant turn's `tool_use` blocks become its `tool_calls` (input as a JSON text); its
 *   `thinking` blocks are dropped: earlier reasoning is never fed back to the model;
 * - a final assistant turn is a prefill: the answer continues its text (`prefix`, as DeepSeek's
 *   chat prefix completion), as Anthropic does;
 * - `thinking: {type:"enabled", budget_tokens}` is the reasoning budget, `disabled` asks the model
 *   not to reason; absent, the model reasons as it does on /v1 (reasoning models return thinking
 *   blocks).
 */
export function toGenerationRequest(body: MessagesBody | CountTokensBody, signal?: AbortSignal): GenerationRequest {
  const messages: ChatMessage[] = [];
  const system = typeof body.system === "string" ? body.system : body.system?.map((b) => b.text).join("\n");
  if (system) messages.push({ role: "system", content: system });
  for (const m of body.messages) {
    if (m.role === "user") messages.push(...userTurn(m.content));
    else messages.push(assistantTurn(m.content));
  }
  const last = messages[messages.length - 1];
  if (last?.role === "assistant" && !last.tool_calls) {
    // A final turn with nothing to continue (only thinking, or empty) asks for a fresh answer.
    if (last.content === "") messages.pop();
    else last.prefix = true;
  }

  const tools = body.tools?.map((t) => ({
    name: t.name,
    ...(t.description !== undefined ? { description: t.description } : {}),
    parameters: t.input_schema ?? { type: "object", properties: {} },
  }));
  const choice = body.tool_choice;
  const toolChoice: ToolChoice | undefined =
    choice === undefined ? undefined : choice.type === "auto" ? "auto" : choice.type === "any" ? "required" : choice.type === "none" ? "none" : { name: choice.name };
  const disableParallel = choice && "disable_parallel_tool_use" in choice ? choice.disable_parallel_tool_use : undefined;

  return {
    model: body.model,
    messages,
    ...(body.max_tokens !== undefined ? { maxTokens: body.max_tokens } : {}),
    ...(body.temperature !== undefined ? { temperature: body.temperature } : {}),
    ...(body.top_p !== undefined ? { topP: body.top_p } : {}),
    ...(body.top_k !== undefined ? { topK: body.top_k } : {}),
    ...(body.stop_sequences?.length ? { stop: body.stop_sequences } : {}),
    ...(tools?.length ? { tools } : {}),
    ...(toolChoice !== undefined && tools?.length ? { toolChoice } : {}),
    ...(disableParallel === true ? { parallelToolCalls: false } : {}),
    ...(body.thinking?.type === "enabled" ? { thinkingBudget: body.thinking.budget_tokens } : {}),
    ...(body.thinking?.type === "disabled" ? { thinking: false } : {}),
    ...(signal ? { signal } : {}),
  };
}

function userTurn(blocks: Block[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  const text: string[] = [];
  for (const block of blocks) {
    if (block.type === "text") text.push(block.text);
    else if (block.type === "tool_result") {
      const content = typeof block.content === "string" ? block.content : (block.content ?? []).map((b) => ("text" in b ? b.text : "")).join("\n");
      // The model learns the call failed the way a tool's own error text would tell it.
      out.push({ role: "tool", tool_call_id: block.tool_use_id, content: block.is_error ? `Error: ${content}` : content });
    }
  }
  if (text.length > 0) out.push({ role: "user", content: text.join("\n") });
  return out;
}

function assistantTurn(blocks: AssistantBlock[]): ChatMessage {
  const text: string[] = [];
  const calls: ToolCall[] = [];
  for (const block of blocks) {
    if (block.type === "text") text.push(block.text);
    else if (block.type === "tool_use") calls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
    // thinking / redacted_thinking: dropped (never fed back).
  }
  return { role: "assistant", content: text.join(""), ...(calls.length > 0 ? { tool_calls: calls } : {}) };
}

import type { ChatMessage, GenerationRequest } from "../types.ts";

/**
 * The OpenAI-shaped chat completions body sent upstream for one request: every parameter the
 * request carries is passed on (an upstream that cannot honour one refuses it, and its 400 reaches
 * the client), none is dropped silently. Always streamed, with usage.
 */
export function upstreamBody(request: GenerationRequest, upstreamModel: string): Record<string, unknown> {
  if (request.completion) return upstreamCompletionBody(request, upstreamModel, request.completion);
  const body: Record<string, unknown> = {
    model: upstreamModel,
    messages: request.messages.map(upstreamMessage),
    stream: true,
    stream_options: { include_usage: true },
  };
  sampling(request, body);
  if (request.logprobs) {
    body.logprobs = true;
    body.top_logprobs = request.logprobs.top;
  }
  if (request.responseFormat) body.response_format = request.responseFormat;
  if (request.thinking === false) body.thinking = { type: "disabled" };
  else if (request.thinkingBudget !== undefined) body.thinking = { type: "enabled", budget_tokens: request.thinkingBudget };
  if (request.tools?.length) {
    body.tools = request.tools.map((tool) => ({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        parameters: tool.parameters ?? { type: "object", properties: {} },
        ...(tool.strict !== undefined ? { strict: tool.strict } : {}),
      },
    }));
    const choice = request.toolChoice;
    if (choice !== undefined) body.tool_choice = typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
    if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
  }
  return body;
}

/** Where the body goes: raw-text completions (FIM included) to `completions`, chats to `chat/completions`. */
export function upstreamPath(request: GenerationRequest): string {
  return request.completion ? "completions" : "chat/completions";
}

/**
 * A raw-text completion in OpenAI's legacy shape (DeepSeek's FIM endpoint, vLLM, llama-server):
 * `prompt`, and `suffix` for fill-in-the-middle; `logprobs` is the number of alternatives there.
 */
function upstreamCompletionBody(request: GenerationRequest, upstreamModel: string, completion: { prompt: string; suffix?: string }): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: upstreamModel,
    prompt: completion.prompt,
    ...(completion.suffix !== undefined ? { suffix: completion.suffix } : {}),
    stream: true,
    stream_options: { include_usage: true },
  };
  sampling(request, body);
  if (request.logprobs) body.logprobs = request.logprobs.top;
  return body;
}

/** The sampling parameters both shapes share. */
function sampling(request: GenerationRequest, body: Record<string, unknown>): void {
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.topP !== undefined) body.top_p = request.topP;
  // Not OpenAI's, but vLLM, SGLang and llama-server take it.
  if (request.topK !== undefined) body.top_k = request.topK;
  if (request.seed !== undefined) body.seed = request.seed;
  if (request.stop?.length) body.stop = request.stop;
  if (request.frequencyPenalty !== undefined) body.frequency_penalty = request.frequencyPenalty;
  if (request.presencePenalty !== undefined) body.presence_penalty = request.presencePenalty;
  if (request.logitBias && Object.keys(request.logitBias).length > 0) body.logit_bias = request.logitBias;
}

/**
 * One message in OpenAI's shape. Earlier turns' reasoning is never sent upstream (DeepSeek
 * rejects it outright); an assistant turn's tool calls and a tool message's call id are, and the
 * final assistant message of a prefix completion keeps DeepSeek's `prefix: true`.
 */
export function upstreamMessage(message: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: message.role, content: message.content };
  if (message.name) out.name = message.name;
  if (message.role === "assistant" && message.tool_calls?.length) {
    out.tool_calls = message.tool_calls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }));
  }
  if (message.role === "tool" && message.tool_call_id !== undefined) out.tool_call_id = message.tool_call_id;
  if (message.prefix) out.prefix = true;
  return out;
}

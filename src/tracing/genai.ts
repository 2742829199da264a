import type { Attributes } from "@opentelemetry/api";
import type { ChatMessage, EngineEvent, FinishReason, GenerationRequest, ModelInfo, Usage } from "../engines/types.ts";
import { GEN_AI, GEN_AI_OPERATION, GEN_AI_PROVIDER, SPUTNIK } from "./attributes.ts";
import { capturingMessageContent, startStage, tracingOn, type Stage } from "./spans.ts";

/** What the generation span learns when the generation ends. */
export interface GenerationResult {
  usage: Usage;
  finishReason: FinishReason | null;
  /** The error that ended it; null when it finished or the client left. */
  failure: unknown;
  /** Since the pipeline took the request, ms; null when nothing came out. */
  ttftMs: number | null;
}

/** The generation span of one request: events in, attributes out. */
export interface GenerationSpan {
  event(event: EngineEvent): void;
  end(result: GenerationResult): void;
}

const NO_GENERATION: GenerationSpan = Object.freeze({ event: () => undefined, end: () => undefined });

/**
 * Starts the span of one engine generation, named "<operation> <model>" with the GenAI semantic
 * conventions' attributes: what was asked (model, sampling parameters, the conversation), and at
 * the end what came back (finish reason, token usage equal to the response's `usage`). Message
 * text is recorded only when the operator opted in (`tracing.captureMessageContent`).
 */
export function startGenerationSpan(request: GenerationRequest, model: ModelInfo | undefined, stream: boolean): GenerationSpan {
  if (!tracingOn()) return NO_GENERATION;
  const operation = request.completion ? GEN_AI_OPERATION.textCompletion : GEN_AI_OPERATION.chat;
  const attributes: Attributes = {
    [GEN_AI.operationName]: operation,
    [GEN_AI.providerName]: GEN_AI_PROVIDER,
    [GEN_AI.requestModel]: request.model,
    [GEN_AI.requestStream]: stream,
    [GEN_AI.outputType]: request.responseFormat && request.responseFormat.type !== "text" ? "json" : "text",
  };
  if (model) attributes[SPUTNIK.engine] = model.engine;
  // The web app's conversation id (what ties a reply to the earlier turns); /v1 has none.
  if (request.routingKey !== undefined) attributes[GEN_AI.conversationId] = request.routingKey;
  const optional: Array<[string, number | undefined]> = [
    [GEN_AI.requestMaxTokens, request.maxTokens],
    [GEN_AI.requestTemperature, request.temperature],
    [GEN_AI.requestTopP, request.topP],
    [GEN_AI.requestTopK, request.topK],
    [GEN_AI.requestSeed, request.seed],
    [GEN_AI.requestFrequencyPenalty, request.frequencyPenalty],
    [GEN_AI.requestPresencePenalty, request.presencePenalty],
  ];
  for (const [name, value] of optional) if (value !== undefined) attributes[name] = value;
  const capture = capturingMessageContent();
  if (capture) attributes[GEN_AI.inputMessages] = JSON.stringify(inputMessages(request));
  const stage = startStage(`${operation} ${request.model}`, attributes);
  return new TracedGeneration(stage, model?.id ?? request.model, capture ? new OutputText() : null);
}

class TracedGeneration implements GenerationSpan {
  constructor(
    private readonly stage: Stage,
    private readonly responseModel: string,
    private readonly output: OutputText | null,
  ) {}

  event(event: EngineEvent): void {
    this.output?.add(event);
  }

  end(result: GenerationResult): void {
    const { usage } = result;
    const attributes: Attributes = {
      [GEN_AI.responseModel]: this.responseModel,
      [GEN_AI.usageInputTokens]: usage.prompt_tokens,
      [GEN_AI.usageOutputTokens]: usage.completion_tokens,
      [GEN_AI.usageCacheReadInputTokens]: usage.prompt_cache_hit_tokens,
      [GEN_AI.usageReasoningOutputTokens]: usage.completion_tokens_details.reasoning_tokens,
    };
    if (result.finishReason) attributes[GEN_AI.responseFinishReasons] = [result.finishReason];
    if (result.ttftMs !== null) attributes[GEN_AI.responseTimeToFirstChunk] = result.ttftMs / 1000;
    if (this.output) attributes[GEN_AI.outputMessages] = JSON.stringify(this.output.messages(result.finishReason));
    this.stage.set(attributes);
    if (result.failure !== null) this.stage.fail(result.failure);
    this.stage.end();
  }
}

/** The prompt in the conventions' message shape (only ever built when content capture is on). */
function inputMessages(request: GenerationRequest): unknown[] {
  if (request.completion) return [{ role: "user", parts: [{ type: "text", content: request.completion.prompt }] }];
  return request.messages.map((m: ChatMessage) => {
    const parts: unknown[] = [];
    if (m.role === "tool") parts.push({ type: "tool_call_response", id: m.tool_call_id ?? null, response: m.content });
    else if (m.content) parts.push({ type: "text", content: m.content });
    for (const call of m.tool_calls ?? []) parts.push({ type: "tool_call", id: call.id, name: call.name, arguments: call.arguments });
    return { role: m.role, parts };
  });
}

/** The answer as it streams (only with content capture on). */
class OutputText {
  private reasoning = "";
  private content = "";
  private readonly calls: Array<{ id: string; name: string; arguments: string }> = [];

  add(event: EngineEvent): void {
    if (event.type === "reasoning") this.reasoning += event.text;
    else if (event.type === "content") this.content += event.text;
    else if (event.type === "tool_call") this.calls[event.index] = { id: event.id, name: event.name, arguments: "" };
    else if (event.type === "tool_call_arguments") {
      const call = this.calls[event.index];
      if (call) call.arguments += event.text;
    }
  }

  messages(finishReason: FinishReason | null): unknown[] {
    const parts: unknown[] = [];
    if (this.reasoning) parts.push({ type: "reasoning", content: this.reasoning });
    if (this.content) parts.push({ type: "text", content: this.content });
    for (const call of this.calls) if (call) parts.push({ type: "tool_call", ...call });
    return [{ role: "assistant", parts, finish_reason: finishReason ?? "error" }];
  }
}

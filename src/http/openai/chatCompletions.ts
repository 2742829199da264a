import type { FastifyInstance } from "fastify";
import { emptyUsage, type EngineEvent, type FinishReason, type ToolCall } from "../../engines/types.ts";
import { LogprobsCollector, presentChatLogprobs, presentTokenLogprobs } from "../../presenters/logprobs.ts";
import type { ModerationView } from "../../presenters/conversationTypes.ts";
import { presentModeration } from "../../presenters/moderation.ts";
import { completionId, presentChunk, presentCompletion, presentUsageChunk } from "../../presenters/openai.ts";
import { CitationTracker } from "../../search/citations.ts";
import type { Completion, Serving } from "../../serving/completion.ts";
import type { RetrievalRequest } from "../../search/types.ts";
import { serveCompletions } from "../completionRoute.ts";
import { OpenAiExchange } from "./sseExchange.ts";
import { errorBody, toApiError } from "../errors.ts";
import { chatCompletionSchema, type ChatCompletionBody } from "./chatCompletionSchema.ts";
import { toGenerationRequest } from "./generationRequest.ts";

/**
 * POST /v1/chat/completions: an adapter over the serving pipeline (src/serving/completion.ts) —
 * parse the body, start the completion (refusals answer with their status before any byte),
 * present its events as one JSON object or as SSE chunks. `[DONE]` goes out only after the
 * pipeline has committed the request's settlement.
 */
export function registerChatCompletions(app: FastifyInstance, deps: { serving: Serving }): void {
  // DeepSeek serves its beta features (chat prefix completion) under /beta: same handler, same keys.
  serveCompletions(app, CHAT_COMPLETIONS_PATHS, { access: "user-or-local" }, deps.serving, {
    parse: (body) => chatCompletionSchema.parse(body),
    generation: (body, signal) => toGenerationRequest(body, signal),
    retrieval: chatRetrieval,
    exchange: (reply, clientGone) => new ChatExchange(reply, clientGone),
  });
}

/** `web_search_options` (web search) and `file_ids` (the caller's documents, Sputnik's extension). */
function chatRetrieval(body: ChatCompletionBody): RetrievalRequest | undefined {
  const web = body.web_search_options != null;
  const fileIds = body.file_ids ?? [];
  if (!web && fileIds.length === 0) return undefined;
  const size = body.web_search_options?.search_context_size;
  return { web, fileIds, ...(size ? { contextSize: size } : {}) };
}

/** Where chat completions are served: OpenAI's path, and DeepSeek's beta base URL with and without /v1. */
export const CHAT_COMPLETIONS_PATHS = ["/v1/chat/completions", "/beta/chat/completions", "/beta/v1/chat/completions"] as const;

/** One chat completion's response: one JSON object, or SSE chunks (opened early when it has to wait). */
class ChatExchange extends OpenAiExchange<ChatCompletionBody> {
  protected async respond(completion: Completion, body: ChatCompletionBody, events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>): Promise<unknown> {
    const stream = body.stream === true;
    const meta: Meta = {
      id: completionId(),
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      reasoningModel: completion.model?.reasoning ?? false,
      headers: completion.headers,
      logprobs: body.logprobs === true,
      moderation: () => {
        const report = completion.moderation;
        return report ? presentModeration(report) : null;
      },
      citations: completion.retrieval ? new CitationTracker(completion.retrieval.sources) : null,
    };
    if (!stream) return this.json(events, first, meta);
    await this.sse(events, first, meta, body.stream_options?.include_usage === true);
    return undefined;
  }

  private async json(events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>, meta: Meta): Promise<unknown> {
    let content = "";
    let reasoning = "";
    let usage = emptyUsage();
    let finishReason: FinishReason = "stop";
    const logprobs = new LogprobsCollector();
    const toolCalls: ToolCall[] = [];
    for (let step = first; !step.done; step = await events.next()) {
      const event = step.value;
      if (event.type === "logprobs") logprobs.add(event.channel, event.tokens);
      else if (event.type === "content") {
        content += event.text;
        meta.citations?.push(event.text);
      } else if (event.type === "reasoning") reasoning += event.text;
      else if (event.type === "tool_call") toolCalls[event.index] = { id: event.id, name: event.name, arguments: "" };
      else if (event.type === "tool_call_arguments" && toolCalls[event.index]) toolCalls[event.index]!.arguments += event.text;
      else if (event.type === "usage") usage = event.usage;
      else if (event.type === "done") finishReason = event.finishReason;
      else if (event.type === "error") throw toApiError(event.error);
    }
    return presentCompletion({
      id: meta.id,
      created: meta.created,
      model: meta.model,
      reasoningModel: meta.reasoningModel,
      content,
      reasoning,
      finishReason,
      usage,
      toolCalls: toolCalls.filter(Boolean),
      logprobs: meta.logprobs ? presentChatLogprobs(logprobs.content, meta.reasoningModel ? logprobs.reasoning : null) : null,
      moderation: meta.moderation(),
      annotations: meta.citations ? (meta.citations.finish(), meta.citations.annotations) : null,
    });
  }

  private async sse(events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>, meta: Meta, includeUsage: boolean): Promise<void> {
    this.openStream(meta.headers);
    const sse = this.stream!;
    const chunk = (delta: Parameters<typeof presentChunk>[0]["delta"], finishReason?: FinishReason, logprobs?: object) =>
      presentChunk({ id: meta.id, created: meta.created, model: meta.model, delta, finishReason: finishReason ?? null, logprobs: logprobs ?? null });
    // Logprobs ride on the next chunk of their channel (they may arrive before its text is whole).
    const pending = new LogprobsCollector();
    const logprobsOf = (channel: "content" | "reasoning") => {
      if (!meta.logprobs) return undefined;
      const tokens = presentTokenLogprobs(pending.take(channel));
      return channel === "content" ? { content: tokens } : { content: null, reasoning_content: tokens };
    };
    sse.data(chunk(meta.reasoningModel ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" }));
    let usage = emptyUsage();
    let failed = false;
    const send = (event: EngineEvent) => {
      switch (event.type) {
        case "logprobs":
          pending.add(event.channel, event.tokens);
          break;
        case "reasoning":
          sse.data(chunk({ content: null, reasoning_content: event.text }, undefined, logprobsOf("reasoning")));
          break;
        case "content":
          meta.citations?.push(event.text);
          sse.data(chunk(meta.reasoningModel ? { content: event.text, reasoning_content: null } : { content: event.text }, undefined, logprobsOf("content")));
          break;
        case "tool_call":
          sse.data(chunk({ tool_calls: [{ index: event.index, id: event.id, type: "function", function: { name: event.name, arguments: "" } }] }));
          break;
        case "tool_call_arguments":
          sse.data(chunk({ tool_calls: [{ index: event.index, function: { arguments: event.text } }] }));
          break;
        case "done":
          // Tokens whose text never came (trimmed whitespace) still go out, before the end.
          if (meta.logprobs && pending.reasoning.length > 0) sse.data(chunk({}, undefined, logprobsOf("reasoning")));
          if (meta.logprobs && pending.content.length > 0) sse.data(chunk({}, undefined, logprobsOf("content")));
          {
            // What moderation did rides on a chunk of its own, right before the finish chunk.
            const moderation = meta.moderation();
            if (moderation) sse.data(chunk({ moderation }));
          }
          // The answer's citations, found as it streamed, ride on one chunk before the finish chunk.
          if (meta.citations) {
            meta.citations.finish();
            sse.data(chunk({ annotations: meta.citations.annotations }));
          }
          sse.data(chunk({}, event.finishReason));
          break;
        case "error":
          // After the first byte the status is sent: the error travels as an event, then [DONE].
          failed = true;
          sse.data(errorBody(toApiError(event.error)));
          break;
      }
    };
    try {
      // Read to the end even when the client has left: the abort stops the engine, and the usage
      // of what it really generated arrives and is billed (a stopped request pays for its tokens).
      for (let step = first; !step.done; step = await events.next()) {
        if (step.value.type === "usage") usage = step.value.usage;
        if (!sse.closed) send(step.value);
      }
    } catch (error) {
      failed = true;
      if (!sse.closed) sse.data(errorBody(toApiError(error)));
    }
    // The pipeline has committed the settlement by now: only then is the answer declared complete.
    if (includeUsage && !failed) sse.data(presentUsageChunk({ id: meta.id, created: meta.created, model: meta.model, usage }));
    sse.data("[DONE]");
    sse.end();
  }
}

interface Meta {
  id: string;
  created: number;
  model: string;
  reasoningModel: boolean;
  /** x-ratelimit-* figures, sent with the SSE head. */
  headers: Record<string, string>;
  /** Whether the request asked for logprobs. */
  logprobs: boolean;
  /** What moderation did, final once the events were read (null: nothing intervened). */
  moderation: () => ModerationView | null;
  /** Finds the answer's citations of the sources search found; null without search. */
  citations: CitationTracker | null;
}

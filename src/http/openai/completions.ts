import type { FastifyInstance } from "fastify";
import { emptyUsage, type EngineEvent, type FinishReason, type TokenLogprob } from "../../engines/types.ts";
import { presentTextChunk, presentTextCompletion, presentTextUsageChunk, textCompletionId } from "../../presenters/completions.ts";
import { presentLegacyLogprobs } from "../../presenters/logprobs.ts";
import { presentModeration } from "../../presenters/moderation.ts";
import type { ModerationView } from "../../presenters/conversationTypes.ts";
import type { Completion, Serving } from "../../serving/completion.ts";
import { serveCompletions } from "../completionRoute.ts";
import { OpenAiExchange } from "./sseExchange.ts";
import { errorBody, toApiError } from "../errors.ts";
import { completionsSchema, toCompletionRequest, type CompletionsBody } from "./completionsSchema.ts";

/** Where legacy/FIM completions are served: OpenAI's path and DeepSeek's beta paths. */
export const COMPLETIONS_PATHS = ["/v1/completions", "/beta/completions", "/beta/v1/completions"] as const;

/**
 * POST /v1/completions (OpenAI's legacy completions; DeepSeek's FIM completion with `suffix`): an
 * adapter over the same serving pipeline as chat — same auth, limits, queue, billing and request
 * log — whose request is a raw completion (`GenerationRequest.completion`). Refusals answer with
 * their status before any byte; a stream ends with `[DONE]` only after the settlement committed.
 */
export function registerCompletions(app: FastifyInstance, deps: { serving: Serving }): void {
  serveCompletions(app, COMPLETIONS_PATHS, { access: "user-or-local" }, deps.serving, {
    parse: (body) => completionsSchema.parse(body),
    generation: (body, signal) => toCompletionRequest(body, signal),
    exchange: (reply, clientGone) => new TextExchange(reply, clientGone),
  });
}

/** One raw completion's response: JSON, or SSE (opened early when the request has to wait). */
class TextExchange extends OpenAiExchange<CompletionsBody> {
  protected async respond(completion: Completion, body: CompletionsBody, events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>): Promise<unknown> {
    const meta: TextMeta = {
      id: textCompletionId(),
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      logprobs: body.logprobs != null,
      moderation: () => {
        const report = completion.moderation;
        return report ? presentModeration(report) : null;
      },
    };
    if (body.stream !== true) return this.json(events, first, meta);
    await this.sse(events, first, meta, body.stream_options?.include_usage === true, completion.headers);
    return undefined;
  }

  private async json(events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>, meta: TextMeta): Promise<unknown> {
    let text = "";
    let usage = emptyUsage();
    let finishReason: FinishReason = "stop";
    const tokens: TokenLogprob[] = [];
    for (let step = first; !step.done; step = await events.next()) {
      const event = step.value;
      if (event.type === "content") text += event.text;
      else if (event.type === "logprobs") tokens.push(...event.tokens);
      else if (event.type === "usage") usage = event.usage;
      else if (event.type === "done") finishReason = event.finishReason;
      else if (event.type === "error") throw toApiError(event.error);
    }
    return presentTextCompletion({
      id: meta.id,
      created: meta.created,
      model: meta.model,
      text,
      finishReason,
      usage,
      logprobs: meta.logprobs ? presentLegacyLogprobs(tokens) : null,
      moderation: meta.moderation(),
    });
  }

  private async sse(
    events: AsyncGenerator<EngineEvent>,
    first: IteratorResult<EngineEvent>,
    meta: TextMeta,
    includeUsage: boolean,
    headers: Record<string, string>,
  ): Promise<void> {
    this.openStream(headers);
    const sse = this.stream!;
    let usage = emptyUsage();
    let failed = false;
    // Logprobs ride on the chunk that carries their text; offsets count from the answer's start.
    let pending: TokenLogprob[] = [];
    let offset = 0;
    const chunk = (text: string, finishReason: FinishReason | null) => {
      const logprobs = meta.logprobs ? presentLegacyLogprobs(pending, offset) : null;
      pending = [];
      offset += text.length;
      // The last chunk (finish_reason set) carries what moderation did, if anything.
      const moderation = finishReason ? meta.moderation() : null;
      return presentTextChunk({ id: meta.id, created: meta.created, model: meta.model, text, finishReason, logprobs, moderation });
    };
    const send = (event: EngineEvent) => {
      switch (event.type) {
        case "logprobs":
          pending.push(...event.tokens);
          break;
        case "content":
          sse.data(chunk(event.text, null));
          break;
        case "done":
          sse.data(chunk("", event.finishReason));
          break;
        case "error":
          failed = true;
          sse.data(errorBody(toApiError(event.error)));
          break;
      }
    };
    try {
      // Read to the end even when the client left: the engine stops and what it generated is billed.
      for (let step = first; !step.done; step = await events.next()) {
        if (step.value.type === "usage") usage = step.value.usage;
        if (!sse.closed) send(step.value);
      }
    } catch (error) {
      failed = true;
      if (!sse.closed) sse.data(errorBody(toApiError(error)));
    }
    if (includeUsage && !failed) sse.data(presentTextUsageChunk({ id: meta.id, created: meta.created, model: meta.model, usage }));
    sse.data("[DONE]");
    sse.end();
  }
}

interface TextMeta {
  id: string;
  created: number;
  model: string;
  logprobs: boolean;
  moderation: () => ModerationView | null;
}

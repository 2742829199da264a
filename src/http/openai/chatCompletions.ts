import type { FastifyInstance, FastifyReply } from "fastify";
import { emptyUsage, type EngineEvent, type FinishReason } from "../../engines/types.ts";
import type { QueueUpdate } from "../../limits/admissionQueue.ts";
import { identityOf } from "../../limits/identity.ts";
import { completionId, presentChunk, presentCompletion, presentUsageChunk } from "../../presenters/openai.ts";
import type { Completion, Serving } from "../../serving/completion.ts";
import { errorBody, toApiError } from "../errors.ts";
import { SseWriter } from "../sse.ts";
import { chatCompletionSchema, type ChatCompletionBody } from "./chatCompletionSchema.ts";
import { toGenerationRequest } from "./generationRequest.ts";

/**
 * POST /v1/chat/completions: an adapter over the serving pipeline (src/serving/completion.ts) —
 * parse the body, start the completion (refusals answer with their status before any byte),
 * present its events as one JSON object or as SSE chunks. `[DONE]` goes out only after the
 * pipeline has committed the request's settlement.
 */
export function registerChatCompletions(app: FastifyInstance, deps: { serving: Serving }): void {
  app.post("/v1/chat/completions", async (request, reply) => {
    const body = chatCompletionSchema.parse(request.body);
    const abort = new AbortController();
    // The response's "close" fires when the client goes away before we finished: stop generating.
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort(new Error("client disconnected"));
    });
    const exchange = new Exchange(reply, abort.signal);
    let completion: Completion;
    try {
      completion = await deps.serving.start({
        actor: request.actor,
        identity: identityOf(request.actor, request.ip),
        clientIp: request.ip ?? null,
        generation: toGenerationRequest(body, abort.signal),
        stream: body.stream === true,
        onQueue: (update) => exchange.keepAlive(update),
      });
    } catch (error) {
      return exchange.refuse(error);
    }
    try {
      return await exchange.present(completion, body);
    } finally {
      // However presenting ended (a write failed, the client left), the completion is settled.
      await completion.abandon();
    }
  });
}

/** One response to one completion: JSON, or SSE opened early when the request has to wait. */
class Exchange {
  /** Set when the stream opened before the first token (the request waited in line). */
  private waiting: SseWriter | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly clientGone: AbortSignal,
  ) {}

  /** The place in line, as an SSE comment, while a stream waits. */
  keepAlive(update: QueueUpdate | null): void {
    if (update) this.waiting?.comment(`keep-alive queue_position=${update.position} estimated_wait_s=${update.estimatedWaitS}`);
  }

  /** A refusal before any byte: its status; a client that already left gets nothing. */
  refuse(error: unknown): undefined {
    if (this.clientGone.aborted) {
      if (!this.waiting) this.reply.hijack();
      this.reply.raw.destroy();
      return undefined;
    }
    throw toApiError(error);
  }

  async present(completion: Completion, body: ChatCompletionBody): Promise<unknown> {
    const stream = body.stream === true;
    this.reply.headers(completion.headers);
    if (completion.queued && stream) {
      this.reply.hijack();
      this.waiting = new SseWriter(this.reply.raw);
      this.waiting.open(completion.headers);
      this.keepAlive(completion.position());
    }
    const events = completion.events();
    let first: IteratorResult<EngineEvent>;
    try {
      // Errors found before the first token (waiting timed out, a bad grammar) still get a status.
      first = await events.next();
    } catch (error) {
      if (!this.waiting) return this.refuse(error);
      // The stream is open: the error travels as an event, then [DONE].
      this.waiting.data(errorBody(toApiError(error)));
      this.waiting.data("[DONE]");
      this.waiting.end();
      return undefined;
    }
    const meta: Meta = {
      id: completionId(),
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      reasoningModel: completion.model?.reasoning ?? false,
      headers: completion.headers,
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
    for (let step = first; !step.done; step = await events.next()) {
      const event = step.value;
      if (event.type === "content") content += event.text;
      else if (event.type === "reasoning") reasoning += event.text;
      else if (event.type === "usage") usage = event.usage;
      else if (event.type === "done") finishReason = event.finishReason;
      else if (event.type === "error") throw toApiError(event.error);
    }
    return presentCompletion({ id: meta.id, created: meta.created, model: meta.model, reasoningModel: meta.reasoningModel, content, reasoning, finishReason, usage });
  }

  private async sse(events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>, meta: Meta, includeUsage: boolean): Promise<void> {
    const sse = this.waiting ?? new SseWriter(this.reply.raw);
    if (!this.waiting) {
      this.reply.hijack();
      sse.open(meta.headers);
    }
    const chunk = (delta: Parameters<typeof presentChunk>[0]["delta"], finishReason?: FinishReason) =>
      presentChunk({ id: meta.id, created: meta.created, model: meta.model, delta, finishReason: finishReason ?? null });
    sse.data(chunk(meta.reasoningModel ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" }));
    let usage = emptyUsage();
    let failed = false;
    const send = (event: EngineEvent) => {
      switch (event.type) {
        case "reasoning":
          sse.data(chunk({ content: null, reasoning_content: event.text }));
          break;
        case "content":
          sse.data(chunk(meta.reasoningModel ? { content: event.text, reasoning_content: null } : { content: event.text }));
          break;
        case "done":
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
}

import type { FastifyInstance } from "fastify";
import type { EngineEvent, FinishReason } from "../../engines/types.ts";
import { emptyUsage } from "../../engines/types.ts";
import type { QueueUpdate } from "../../limits/admissionQueue.ts";
import { identityOf } from "../../limits/identity.ts";
import type { Serving } from "../../serving/completion.ts";
import { errorBody, toApiError } from "../errors.ts";
import { SseWriter } from "../sse.ts";
import { chatCompletionSchema } from "./chatCompletionSchema.ts";
import { toGenerationRequest } from "./generationRequest.ts";
import { completionId, presentChunk, presentCompletion, presentUsageChunk } from "../../presenters/openai.ts";

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
    // A stream that has to wait opens early: its place in line travels as SSE comments.
    let waitingStream: SseWriter | undefined;
    const keepAlive = (update: QueueUpdate | null) => {
      if (update) waitingStream?.comment(`keep-alive queue_position=${update.position} estimated_wait_s=${update.estimatedWaitS}`);
    };
    const stream = body.stream === true;
    let completion;
    try {
      completion = await deps.serving.start({
        actor: request.actor,
        identity: identityOf(request.actor, request.ip),
        clientIp: request.ip ?? null,
        generation: toGenerationRequest(body, abort.signal),
        stream,
        onQueue: keepAlive,
      });
    } catch (error) {
      return leftOrThrow(error);
    }
    reply.headers(completion.headers);
    if (completion.queued && stream) {
      reply.hijack();
      waitingStream = new SseWriter(reply.raw);
      waitingStream.open(completion.headers);
      keepAlive(completion.position());
    }
    const events = completion.events()[Symbol.asyncIterator]();
    let first: IteratorResult<EngineEvent>;
    try {
      // Errors found before the first token (waiting timed out, a bad grammar) still get a status.
      first = await events.next();
    } catch (error) {
      if (!waitingStream) return leftOrThrow(error);
      // The stream is open: the error travels as an event, then [DONE].
      waitingStream.data(errorBody(toApiError(error)));
      waitingStream.data("[DONE]");
      waitingStream.end();
      return;
    }

    function leftOrThrow(error: unknown): void {
      if (abort.signal.aborted) {
        // The client left while waiting: there is nobody to answer.
        if (!waitingStream) reply.hijack();
        reply.raw.destroy();
        return;
      }
      throw toApiError(error);
    }

    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const reasoningModel = completion.model?.reasoning ?? false;

    if (!stream) {
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
      return presentCompletion({ id, created, model: body.model, content, reasoning, reasoningModel, finishReason, usage });
    }

    const sse = waitingStream ?? new SseWriter(reply.raw);
    if (!waitingStream) {
      reply.hijack();
      sse.open(completion.headers);
    }
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: Parameters<typeof presentChunk>[0]["delta"], finishReason?: FinishReason) =>
      presentChunk({ id, created, model: body.model, delta, finishReason: finishReason ?? null });
    sse.data(chunk(reasoningModel ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" }));
    let usage = emptyUsage();
    let failed = false;
    // Read to the end even when the client has left: the abort stops the engine, and the usage of
    // what it really generated arrives and is billed (a stopped request pays for its tokens).
    const send = (event: EngineEvent) => {
      switch (event.type) {
        case "reasoning":
          sse.data(chunk({ content: null, reasoning_content: event.text }));
          break;
        case "content":
          sse.data(chunk(reasoningModel ? { content: event.text, reasoning_content: null } : { content: event.text }));
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
      for (let step = first; !step.done; step = await events.next()) {
        if (step.value.type === "usage") usage = step.value.usage;
        if (!sse.closed) send(step.value);
      }
    } catch (error) {
      failed = true;
      if (!sse.closed) sse.data(errorBody(toApiError(error)));
    }
    // The pipeline has committed the settlement by now: only then is the answer declared complete.
    if (includeUsage && !failed) sse.data(presentUsageChunk({ id, created, model: body.model, usage }));
    sse.data("[DONE]");
    sse.end();
  });
}

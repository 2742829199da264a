import type { FastifyInstance } from "fastify";
import { toGenerationRequest } from "../../chat/generationRequest.ts";
import type { ModelRouter } from "../../engines/router.ts";
import { emptyUsage, type EngineEvent, type FinishReason, type Usage } from "../../engines/types.ts";
import { ApiError, errorBody, toApiError } from "../errors.ts";
import { SseWriter } from "../sse.ts";
import { chatCompletionSchema } from "./chatCompletionSchema.ts";
import { completionId, presentChunk, presentCompletion, presentUsageChunk } from "./presenters.ts";

export interface CompletionRecord {
  model: string;
  engine: string;
  status: number;
  errorCode: string | null;
  stream: boolean;
  usage: Usage;
  ttftMs: number | null;
  totalMs: number;
  clientIp: string | null;
}

export interface ChatCompletionDeps {
  router: ModelRouter;
  /** Called once per request, whatever its outcome; failures here are logged, never surfaced. */
  record?: (entry: CompletionRecord) => Promise<void>;
}

/** POST /v1/chat/completions: parse, hand to the engine, present as JSON or SSE. */
export function registerChatCompletions(app: FastifyInstance, deps: ChatCompletionDeps): void {
  app.post("/v1/chat/completions", async (request, reply) => {
    const body = chatCompletionSchema.parse(request.body);
    const started = performance.now();
    const abort = new AbortController();
    // The response's "close" fires when the client goes away before we finished: stop generating.
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort(new Error("client disconnected"));
    });
    const modelInfo = deps.router.model(body.model);
    const record = (status: number, errorCode: string | null, usage: Usage, ttftMs: number | null) =>
      deps
        .record?.({
          model: body.model,
          engine: modelInfo?.engine ?? "none",
          status,
          errorCode,
          stream: body.stream === true,
          usage,
          ttftMs,
          totalMs: Math.round(performance.now() - started),
          clientIp: request.ip ?? null,
        })
        .catch((error) => request.log.error({ err: error }, "could not record request"));

    let events: AsyncIterator<EngineEvent>;
    let first: IteratorResult<EngineEvent>;
    try {
      events = deps.router.generate(toGenerationRequest(body, abort.signal))[Symbol.asyncIterator]();
      // Errors found before generation (unknown model, prompt too long) still get a proper status.
      first = await events.next();
    } catch (error) {
      const apiError = toApiError(error);
      await record(apiError.status, apiError.code, emptyUsage(), null);
      throw apiError;
    }
    const ttftMs = Math.round(performance.now() - started);
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const reasoningModel = modelInfo?.reasoning ?? false;

    if (body.stream !== true) {
      let content = "";
      let reasoning = "";
      let usage = emptyUsage();
      let finishReason: FinishReason = "stop";
      try {
        for (let step = first; !step.done; step = await events.next()) {
          const event = step.value;
          if (event.type === "content") content += event.text;
          else if (event.type === "reasoning") reasoning += event.text;
          else if (event.type === "usage") usage = event.usage;
          else if (event.type === "done") finishReason = event.finishReason;
        }
      } catch (error) {
        const apiError = toApiError(error);
        await record(apiError.status, apiError.code, usage, ttftMs);
        throw apiError;
      }
      await record(abort.signal.aborted ? 499 : 200, null, usage, ttftMs);
      return presentCompletion({ id, created, model: body.model, content, reasoning, reasoningModel, finishReason, usage });
    }

    reply.hijack();
    const sse = new SseWriter(reply.raw);
    sse.open();
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: Parameters<typeof presentChunk>[0]["delta"], finishReason?: FinishReason) =>
      presentChunk({ id, created, model: body.model, delta, finishReason: finishReason ?? null });
    sse.data(chunk(reasoningModel ? { role: "assistant", content: null, reasoning_content: "" } : { role: "assistant", content: "" }));
    let usage = emptyUsage();
    let status = 200;
    let errorCode: string | null = null;
    try {
      for (let step = first; !step.done; step = await events.next()) {
        const event = step.value;
        if (sse.closed) break;
        switch (event.type) {
          case "reasoning":
            sse.data(chunk({ content: null, reasoning_content: event.text }));
            break;
          case "content":
            sse.data(chunk(reasoningModel ? { content: event.text, reasoning_content: null } : { content: event.text }));
            break;
          case "usage":
            usage = event.usage;
            break;
          case "done":
            sse.data(chunk({}, event.finishReason));
            break;
          case "error":
            throw event.error;
        }
      }
      if (includeUsage) sse.data(presentUsageChunk({ id, created, model: body.model, usage }));
    } catch (error) {
      // After the first byte the status is sent: the error travels as an event, then [DONE].
      const apiError = error instanceof ApiError ? error : toApiError(error);
      status = apiError.status;
      errorCode = apiError.code;
      sse.data(errorBody(apiError));
    } finally {
      // Stops the engine if we left the loop early (client gone): frees the sequence at once.
      await events.return?.();
    }
    if (abort.signal.aborted) status = 499;
    sse.data("[DONE]");
    sse.end();
    await record(status, errorCode, usage, ttftMs);
  });
}

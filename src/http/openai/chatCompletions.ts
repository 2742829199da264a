import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Charge } from "../../billing/meter.ts";
import { toGenerationRequest } from "../../chat/generationRequest.ts";
import type { ModelRouter } from "../../engines/router.ts";
import { emptyUsage, type EngineEvent, type FinishReason, type GenerationRequest, type ModelInfo, type Usage } from "../../engines/types.ts";
import type { QueueUpdate } from "../../limits/admissionQueue.ts";
import type { CompletionPass, Limits } from "../../limits/limits.ts";
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
  /** Time spent in the admission queue. */
  queueMs: number;
  clientIp: string | null;
  /** The billing charge opened by `admit`: `record` must settle it. */
  charge: Charge | null;
}

export interface ChatCompletionDeps {
  router: ModelRouter;
  /** Called once per request, whatever its outcome; failures here are logged, never surfaced. */
  record?: (entry: CompletionRecord) => Promise<void>;
  /** Rate limits, concurrency caps and the fair admission queue; without it every request runs at once. */
  limits?: Limits;
  /**
   * Billing (src/http/openai/metering.ts): refuses with ApiError (402 balance, 403 plan, 429 quota)
   * or reserves the maximum cost and returns the generation request tightened to it.
   */
  admit?: (request: FastifyRequest, generation: GenerationRequest, model: ModelInfo | undefined) => Promise<{ generation: GenerationRequest; charge: Charge | null }>;
}

/** POST /v1/chat/completions: parse, hand to the engine, present as JSON or SSE. */
export function registerChatCompletions(app: FastifyInstance, deps: ChatCompletionDeps): void {
  app.post("/v1/chat/completions", async (request, reply) => {
    const body = chatCompletionSchema.parse(request.body);
    deps.limits?.checkMessages(body.messages);
    const started = performance.now();
    const abort = new AbortController();
    // The response's "close" fires when the client goes away before we finished: stop generating.
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort(new Error("client disconnected"));
    });
    const modelInfo = deps.router.model(body.model);
    let charge: Charge | null = null;
    let pass: CompletionPass | null = null;
    // Frees the request's place and concurrency however the response ends (idempotent).
    reply.raw.once("close", () => pass?.finish({ completed: false }));
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
          queueMs: Math.round(pass?.waitedMs() ?? 0),
          clientIp: request.ip ?? null,
          charge,
        })
        .catch((error) => request.log.error({ err: error }, "could not record request"));

    // A stream that has to wait opens early: its place in line travels as SSE comments.
    let waitingStream: SseWriter | undefined;
    const keepAlive = (update: QueueUpdate | null) => {
      if (update) waitingStream?.comment(`keep-alive queue_position=${update.position} estimated_wait_s=${update.estimatedWaitS}`);
    };
    let events: AsyncIterator<EngineEvent>;
    let first: IteratorResult<EngineEvent>;
    try {
      // A prompt that cannot fit is refused now, not after waiting in line for a sequence.
      deps.router.preflight(toGenerationRequest(body));
      if (deps.limits && modelInfo) {
        // Rate limits, caps and a full queue refuse here (429/503), before the first byte.
        pass = await deps.limits.admitCompletion({
          identity: deps.limits.identify(request),
          model: body.model,
          signal: abort.signal,
          onQueue: keepAlive,
        });
        reply.headers(pass.headers);
      }
      let generation = toGenerationRequest(body, abort.signal);
      if (deps.admit) ({ generation, charge } = await deps.admit(request, generation, modelInfo));
      if (pass?.queued && body.stream === true) {
        reply.hijack();
        waitingStream = new SseWriter(reply.raw);
        waitingStream.open(pass.headers);
        keepAlive(pass.position());
      }
      await pass?.ready;
      events = deps.router.generate(generation)[Symbol.asyncIterator]();
      // Errors found before generation (unknown model, prompt too long) still get a proper status.
      first = await events.next();
    } catch (error) {
      const apiError = toApiError(error);
      pass?.finish({ completed: false });
      if (abort.signal.aborted) {
        // The client left while waiting: there is nobody to answer.
        await record(499, null, emptyUsage(), null);
        if (!waitingStream) reply.hijack();
        reply.raw.destroy();
        return;
      }
      await record(apiError.status, apiError.code, emptyUsage(), null);
      if (!waitingStream) throw apiError;
      // The stream is open: the error travels as an event, then [DONE].
      waitingStream.data(errorBody(apiError));
      waitingStream.data("[DONE]");
      waitingStream.end();
      return;
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
        pass?.finish({ totalTokens: usage.total_tokens, completed: false });
        await record(apiError.status, apiError.code, usage, ttftMs);
        throw apiError;
      }
      pass?.finish({ totalTokens: usage.total_tokens, completed: !abort.signal.aborted });
      await record(abort.signal.aborted ? 499 : 200, null, usage, ttftMs);
      return presentCompletion({ id, created, model: body.model, content, reasoning, reasoningModel, finishReason, usage });
    }

    const sse = waitingStream ?? new SseWriter(reply.raw);
    if (!waitingStream) {
      reply.hijack();
      sse.open(pass?.headers);
    }
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
        if (sse.closed) {
          // The client left and the abort stopped the engine: drain it anyway, so the usage of what
          // it really generated arrives and is billed (a stopped request pays for its tokens).
          if (event.type === "usage") usage = event.usage;
          continue;
        }
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
    pass?.finish({ totalTokens: usage.total_tokens, completed: status === 200 });
    sse.data("[DONE]");
    sse.end();
    await record(status, errorCode, usage, ttftMs);
  });
}

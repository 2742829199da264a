/**
 * Every span and attribute name Sputnik's traces use, in one place.
 *
 * The names are spelled out here rather than imported from @opentelemetry/semantic-conventions:
 * the GenAI ones live only in its "incubating" entry point (a module of several hundred KB, and
 * one that OpenTelemetry asks users to copy from, since incubating names may change), and importing
 * even the stable entry would load code while tracing is off. tracing.test.ts checks each name
 * against the package, so a renamed convention fails a test rather than a dashboard.
 */

/** OpenTelemetry GenAI semantic conventions (gen_ai.*). */
export const GEN_AI = {
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  conversationId: "gen_ai.conversation.id",
  outputType: "gen_ai.output.type",
  requestModel: "gen_ai.request.model",
  requestMaxTokens: "gen_ai.request.max_tokens",
  requestTemperature: "gen_ai.request.temperature",
  requestTopP: "gen_ai.request.top_p",
  requestTopK: "gen_ai.request.top_k",
  requestSeed: "gen_ai.request.seed",
  requestFrequencyPenalty: "gen_ai.request.frequency_penalty",
  requestPresencePenalty: "gen_ai.request.presence_penalty",
  requestStream: "gen_ai.request.stream",
  responseModel: "gen_ai.response.model",
  responseFinishReasons: "gen_ai.response.finish_reasons",
  responseTimeToFirstChunk: "gen_ai.response.time_to_first_chunk",
  usageInputTokens: "gen_ai.usage.input_tokens",
  usageOutputTokens: "gen_ai.usage.output_tokens",
  usageCacheReadInputTokens: "gen_ai.usage.cache_read.input_tokens",
  usageReasoningOutputTokens: "gen_ai.usage.reasoning.output_tokens",
  /** Message content: only with `tracing.captureMessageContent`. */
  inputMessages: "gen_ai.input.messages",
  outputMessages: "gen_ai.output.messages",
} as const;

/** Values of `gen_ai.operation.name` Sputnik serves. */
export const GEN_AI_OPERATION = { chat: "chat", textCompletion: "text_completion" } as const;

/** `gen_ai.provider.name`: the service answering is Sputnik itself (the engine kind is `sputnik.engine`). */
export const GEN_AI_PROVIDER = "sputnik";

/** Stable OpenTelemetry conventions (HTTP server spans, errors, resources). */
export const SEMCONV = {
  httpRequestMethod: "http.request.method",
  httpRoute: "http.route",
  httpResponseStatusCode: "http.response.status_code",
  urlPath: "url.path",
  urlScheme: "url.scheme",
  userAgentOriginal: "user_agent.original",
  errorType: "error.type",
  serviceName: "service.name",
} as const;

/** Sputnik's own attributes (no convention covers them). */
export const SPUTNIK = {
  /** The engine kind that served the model (local, remote, fleet…), as in the request log. */
  engine: "sputnik.engine",
  /** Who the auth stage found: user, local or anonymous. */
  actorKind: "sputnik.actor.kind",
  /** Whether the request had to wait in the admission queue. */
  queued: "sputnik.queue.queued",
  /** The status the completion settled with (200, 499 when the client left, or the error's). */
  outcomeStatus: "sputnik.outcome.status",
  /** Tries the settlement transaction took. */
  settleAttempts: "sputnik.settle.attempts",
} as const;

/** Span names of the pipeline's stages (the generation span is named "<operation> <model>"). */
export const SPAN = {
  auth: "sputnik.auth",
  admit: "sputnik.admit",
  queueWait: "sputnik.queue_wait",
  reserve: "sputnik.reserve",
  settle: "sputnik.settle",
} as const;

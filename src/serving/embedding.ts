import { embeddingTokenBound } from "../engines/remote/embeddings.ts";
import { ModelRouter } from "../engines/router.ts";
import {
  emptyUsage,
  type EmbeddingRequest,
  type Embeddings,
  type EngineActivity,
  type EngineEvent,
  type EngineHealth,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
} from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import { Completion, type Serving, type ServingDeps } from "./completion.ts";
import type { CompletionInput } from "./types.ts";

/** One /v1/embeddings request as a surface hands it to the pipeline. */
export interface EmbeddingInput extends Pick<CompletionInput, "actor" | "identity" | "clientIp"> {
  /** Its `signal` aborts when the client goes away. */
  request: EmbeddingRequest;
}

export interface EmbeddingResult extends Embeddings {
  model: ModelInfo;
  /** x-ratelimit-* figures to send with the response. */
  headers: Record<string, string>;
}

/**
 * Embeddings through THE serving pipeline (src/serving/completion.ts), not beside it: one
 * `Completion` whose router is an embedding stage (below), so an embedding request is resolved,
 * authorized (`model.use`: key scope 404, plan 403), admitted (rate limits, caps, a place in the
 * model's admission queue — a local model's embeddings share its places with its completions),
 * reserved, and settled exactly once — ledger row with the input tokens as prompt cache misses, and
 * its request log row, in one transaction, with the pipeline's retries — by the same code as a
 * completion. What differs: no moderation (nothing is generated or shown), an output bound of zero,
 * and the reservation covers the inputs' token bound, since tokenizing waits for the request's turn.
 */
export async function runEmbedding(serving: Serving, input: EmbeddingInput): Promise<EmbeddingResult> {
  const stage = new EmbeddingStage(serving.deps.router, input.request);
  const { moderation: _unused, ...deps } = serving.deps;
  const pipeline: ServingDeps = { ...deps, router: stage };
  const generation: GenerationRequest = {
    model: input.request.model,
    messages: [],
    maxTokens: 0,
    ...(input.request.signal ? { signal: input.request.signal } : {}),
  };
  const completion = new Completion(pipeline, { actor: input.actor, identity: input.identity, clientIp: input.clientIp, generation, stream: false });
  try {
    await completion.runAdmission();
  } catch (error) {
    await completion.fail(error);
    throw error;
  }
  try {
    // Throws the engine's refusal (nothing was output) after the settlement has committed.
    for await (const event of completion.events()) if (event.type === "error") throw event.error;
  } finally {
    await completion.abandon();
  }
  const result = stage.result;
  if (!result || !stage.info) throw new ServiceError("internal", "The embeddings were lost on the way.", { code: "internal_error" });
  return { ...result, model: stage.info, headers: completion.headers };
}

/**
 * The pipeline's view of one embedding request: `inspect` is the model's embedding checks, `prepare`
 * the token bound that billing reserves, `generate` the engine's `embed` — its usage the one event
 * the settlement reads. Everything else is the real router's.
 */
class EmbeddingStage extends ModelRouter {
  info: ModelInfo | undefined;
  result: Embeddings | undefined;

  constructor(
    private readonly inner: ModelRouter,
    private readonly request: EmbeddingRequest,
  ) {
    super([]);
  }

  override inspect(): ModelInfo {
    this.info = this.inner.inspectEmbedding(this.request);
    return this.info;
  }

  /** Reserved before tokenizing: each input's byte bound, and never more than the context holds. */
  override prepare(): PreparedRequest {
    const model = this.info ?? this.inspect();
    const context = model.contextLength;
    let bound = 0;
    for (const item of this.request.input) {
      const one = embeddingTokenBound([item]);
      bound += context !== undefined ? Math.min(one, context) : one;
    }
    return { model, promptTokens: bound, exact: false, room: 0 };
  }

  override async *generate(generation: GenerationRequest): AsyncGenerator<EngineEvent> {
    // The pipeline's signal: it follows the client's, and also fires when the pipeline cuts the request.
    const result = await this.inner.embed({ ...this.request, ...(generation.signal ? { signal: generation.signal } : {}) });
    this.result = result;
    const tokens = result.promptTokens;
    yield {
      type: "usage",
      usage: { ...emptyUsage(), prompt_tokens: tokens, total_tokens: tokens, prompt_cache_miss_tokens: tokens },
    };
    yield { type: "done", finishReason: "stop" };
  }

  override models(): ModelInfo[] {
    return this.inner.models();
  }

  override model(id: string): ModelInfo | undefined {
    return this.inner.model(id);
  }

  override engineFor(id: string) {
    return this.inner.engineFor(id);
  }

  override capacity(model: string): number | undefined {
    return this.inner.capacity(model);
  }

  override stats(): EngineActivity[] {
    return this.inner.stats();
  }

  override health(): Promise<EngineHealth> {
    return this.inner.health();
  }

  /** The engines are the real router's: never closed from here. */
  override async close(): Promise<void> {}
}

import {
  EngineError,
  type EmbeddingRequest,
  type Embeddings,
  type Engine,
  type EngineActivity,
  type EngineEvent,
  type EngineHealth,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
} from "../types.ts";
import { LocalModel } from "./localModel.ts";

/**
 * The embedded engine: every locally loaded GGUF model, addressed by its public id. The engine owns
 * its models: those of the config from the start, and those an admin loads or unloads while the
 * service runs (`add`/`remove`, driven by src/runtime/modelManager.ts). The router asks `models()`
 * on every call, so /v1/models and the web app's picker see a change at once, without a restart.
 */
export class LocalEngine implements Engine {
  readonly kind = "local";

  constructor(private readonly loaded: LocalModel[]) {}

  /** Serves a model loaded at run time. Its id must be free (an id names one model). */
  add(model: LocalModel): void {
    const id = model.options.id;
    if (this.get(id)) throw new EngineError(`A model with the id '${id}' is already loaded`, 409, "model_already_loaded", "model");
    this.loaded.push(model);
  }

  /**
   * Stops serving a model: from now on a request for it is answered 404, like a model never
   * loaded. Returns it for the caller to dispose (the caller first makes sure no answer is using it:
   * `activeRequests`).
   */
  remove(id: string): LocalModel | undefined {
    const index = this.loaded.findIndex((m) => m.options.id === id);
    return index === -1 ? undefined : this.loaded.splice(index, 1)[0];
  }

  /** Requests on a model now: on its sequences, generating or waiting for one, and embedding (0 for an unknown id). */
  activeRequests(id: string): number {
    const model = this.get(id);
    return model ? model.pool.busyCount + model.pool.waitingCount + model.embeddingsInFlight : 0;
  }

  models(): ModelInfo[] {
    return this.loaded.map((m) => m.info());
  }

  get(id: string): LocalModel | undefined {
    return this.loaded.find((m) => m.options.id === id);
  }

  generate(request: GenerationRequest, prepared?: PreparedRequest): AsyncIterable<EngineEvent> {
    return this.require(request.model).generate(request, prepared);
  }

  inspect(request: GenerationRequest): void {
    this.require(request.model).inspect(request);
  }

  prepare(request: GenerationRequest): PreparedRequest {
    return this.require(request.model).prepare(request);
  }

  inspectEmbedding(request: EmbeddingRequest): void {
    this.require(request.model).inspectEmbedding(request);
  }

  embed(request: EmbeddingRequest): Promise<Embeddings> {
    return this.require(request.model).embed(request);
  }

  /** A local model runs as many requests at once as it has sequences. */
  capacity(model: string): number | undefined {
    return this.get(model)?.pool.size;
  }

  private require(id: string): LocalModel {
    const model = this.get(id);
    if (!model) throw new EngineError(`The model '${id}' does not exist`, 404, "model_not_found", "model");
    return model;
  }

  /** What each model's engine has done since start (for /metrics). */
  stats(): EngineActivity[] {
    return this.loaded.map((m) => {
      const { batches, reread } = m.stats();
      return {
        model: m.options.id,
        batches: batches.batches,
        batchTokens: batches.tokens,
        sharedBatches: batches.sharedBatches,
        rereadsCompleted: reread.completed,
        rereadsAbandoned: reread.abandoned,
        rereadTokens: reread.tokens,
        promptTokenizations: m.stats().promptTokenizations,
      };
    });
  }

  /** A real round trip through the native addon (tokenize + detokenize) for every model. */
  async health(): Promise<EngineHealth> {
    const details: string[] = [];
    let ok = true;
    for (const model of this.loaded) {
      try {
        const probe = "health probe";
        const text = model.model.detokenize(model.model.tokenize(probe));
        const good = text === probe;
        ok &&= good;
        const speculative = model.stats().speculative;
        const acceptance = speculative?.acceptanceRate != null ? `, speculative acceptance ${(speculative.acceptanceRate * 100).toFixed(0)}%` : "";
        details.push(`${model.options.id}: ${good ? "ok" : "tokenizer round trip failed"} (${model.pool.busyCount}/${model.pool.size} sequences busy${acceptance})`);
      } catch (error) {
        ok = false;
        details.push(`${model.options.id}: ${(error as Error).message}`);
      }
    }
    return { ok, detail: details.join("; ") || "no local models" };
  }

  async close(): Promise<void> {
    await Promise.all(this.loaded.map((m) => m.dispose()));
  }
}

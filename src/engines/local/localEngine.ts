import {
  EngineError,
  type Engine,
  type EngineActivity,
  type EngineEvent,
  type EngineHealth,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
} from "../types.ts";
import { LocalModel } from "./localModel.ts";

/** The embedded engine: every locally loaded GGUF model, addressed by its public id. */
export class LocalEngine implements Engine {
  readonly kind = "local";

  constructor(private readonly loaded: LocalModel[]) {}

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

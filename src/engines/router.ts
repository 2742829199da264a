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
} from "./types.ts";

/**
 * Every engine the service runs, addressed by model id: the serving pipeline asks it to inspect,
 * prepare and generate without knowing which kind of engine serves a model. Local models win a
 * name clash, so an upstream cannot shadow them (the wiring lists local engines first).
 */
export class ModelRouter {
  constructor(private readonly engines: Engine[]) {}

  models(): ModelInfo[] {
    const seen = new Set<string>();
    const out: ModelInfo[] = [];
    for (const engine of this.engines) {
      for (const model of engine.models()) {
        if (seen.has(model.id)) continue;
        seen.add(model.id);
        out.push(model);
      }
    }
    return out;
  }

  model(id: string): ModelInfo | undefined {
    return this.models().find((m) => m.id === id);
  }

  /** The engine serving a model id (first match wins, as in models()). */
  engineFor(id: string): Engine | undefined {
    return this.engines.find((e) => e.models().some((m) => m.id === id));
  }

  /** Cheap checks before limits and admission (see Engine.inspect); throws 404 for an unknown model. */
  inspect(request: GenerationRequest): ModelInfo {
    const engine = this.require(request.model);
    engine.inspect?.(request);
    return engine.models().find((m) => m.id === request.model)!;
  }

  /** Tokenizes once and checks the context (see Engine.prepare). */
  prepare(request: GenerationRequest): PreparedRequest {
    return this.require(request.model).prepare(request);
  }

  generate(request: GenerationRequest, prepared?: PreparedRequest): AsyncIterable<EngineEvent> {
    return this.require(request.model).generate(request, prepared);
  }

  /**
   * The model of an embedding request, after its engine's cheap checks: 404 for an unknown model,
   * 400 (naming `model`) for one that does not embed.
   */
  inspectEmbedding(request: EmbeddingRequest): ModelInfo {
    const engine = this.require(request.model);
    const model = engine.models().find((m) => m.id === request.model)!;
    if (!model.embedding || !engine.embed) {
      throw new EngineError(
        `The model '${request.model}' does not create embeddings; use a model whose /v1/models entry has "embeddings": true.`,
        400,
        "model_not_embedding",
        "model",
      );
    }
    engine.inspectEmbedding?.(request);
    return model;
  }

  /** Embeds with the model's engine (see Engine.embed); `inspectEmbedding` first. */
  embed(request: EmbeddingRequest): Promise<Embeddings> {
    const engine = this.require(request.model);
    if (!engine.embed) throw new EngineError(`The model '${request.model}' does not create embeddings.`, 400, "model_not_embedding", "model");
    return engine.embed(request);
  }

  /** Requests a model runs at once; undefined for an unknown model or an unbounded upstream. */
  capacity(model: string): number | undefined {
    return this.engineFor(model)?.capacity(model);
  }

  stats(): EngineActivity[] {
    return this.engines.flatMap((e) => e.stats());
  }

  async health(): Promise<EngineHealth> {
    if (this.engines.length === 0) return { ok: false, detail: "no engines configured" };
    const results = await Promise.all(this.engines.map((e) => e.health()));
    return { ok: results.every((r) => r.ok), detail: results.map((r) => r.detail).join("; ") };
  }

  async close(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.close()));
  }

  private require(id: string): Engine {
    const engine = this.engineFor(id);
    if (!engine) throw new EngineError(`The model '${id}' does not exist`, 404, "model_not_found", "model");
    return engine;
  }
}

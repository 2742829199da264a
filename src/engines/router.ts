import { EngineError, type Engine, type EngineEvent, type EngineHealth, type GenerationRequest, type ModelInfo } from "./types.ts";

/** Picks the engine serving a model id. Local models win a name clash, so an upstream cannot shadow them. */
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

  generate(request: GenerationRequest): AsyncIterable<EngineEvent> {
    const engine = this.engineFor(request.model);
    if (!engine) throw new EngineError(`The model '${request.model}' does not exist`, 404, "model_not_found", "model");
    return engine.generate(request);
  }

  /** Refuses requests the engine cannot serve before they wait in a queue (see Engine.preflight). */
  preflight(request: GenerationRequest): void {
    this.engineFor(request.model)?.preflight?.(request);
  }

  async health(): Promise<EngineHealth> {
    if (this.engines.length === 0) return { ok: false, detail: "no engines configured" };
    const results = await Promise.all(this.engines.map((e) => e.health()));
    return { ok: results.every((r) => r.ok), detail: results.map((r) => r.detail).join("; ") };
  }

  async close(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.close()));
  }
}

import type { RemoteModelConfig } from "../config/schema.ts";
import { LocalEngine } from "../engines/local/localEngine.ts";
import type { Engine } from "../engines/types.ts";

/**
 * How many requests each model runs at once, which is what its admission queue lets through: a
 * local model's parallel sequences (its SequencePool), a remote model's configured concurrency.
 */
export function modelCapacities(engines: Engine[], remoteModels: RemoteModelConfig[]): (model: string) => number | undefined {
  return (model) => {
    for (const engine of engines) {
      if (engine instanceof LocalEngine) {
        const local = engine.get(model);
        if (local) return local.pool.size;
      } else if (engine.models().some((m) => m.id === model)) {
        return remoteModels.find((r) => r.id === model)?.maxConcurrency;
      }
    }
    return undefined;
  };
}

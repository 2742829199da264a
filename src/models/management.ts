import type { PullJobs } from "./pullJobs.ts";
import type { ModelEntry } from "./registry.ts";

/**
 * What the admin surface may do to local models while the service runs — pull, load, unload,
 * delete — as an interface, so the HTTP adapters and commands depend on this layer and not on the
 * runtime that wires the engines together (src/runtime/modelManager.ts implements it).
 */
export interface ModelManagement {
  readonly pulls: PullJobs;
  /** Whether this service runs a local engine at all (a gateway that only fronts upstreams does not). */
  readonly hasLocalEngine: boolean;
  memory(): { budgetBytes: number | null; inUseBytes: number };
  files(): Promise<ModelFile[]>;
  loaded(): LoadedModel[];
  load(name: string): Promise<LoadedModel>;
  unload(id: string): Promise<void>;
  deleteFile(name: string): Promise<void>;
}

/** A GGUF file in the models directory, and the id it is served under when loaded. */
export interface ModelFile extends ModelEntry {
  loadedAs: string | null;
}

/** A model the local engine serves now (loaded at start or by an admin). */
export interface LoadedModel {
  id: string;
  path: string;
  /** Its name in the models directory; null for one loaded from elsewhere (a config path, the demo model). */
  file: string | null;
  note: string | null;
  contextLength: number;
  reasoning: boolean;
  parallel: number;
  /** The memory check's estimate (weights + contexts); null with a GPU. */
  memoryBytes: number | null;
  /** Requests on its sequences now. */
  activeRequests: number;
}

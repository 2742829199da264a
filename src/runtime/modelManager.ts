import { realpathSync, statSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { modelsDirOf } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { LocalEngine } from "../engines/local/localEngine.ts";
import type { LocalModel } from "../engines/local/localModel.ts";
import { InsufficientMemoryForModelError } from "../engines/local/memoryCheck.ts";
import type { Engine } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import { ModelError } from "../models/errors.ts";
import { PullJobs } from "../models/pullJobs.ts";
import type { LoadedModel, ModelFile, ModelManagement } from "../models/management.ts";
import { listModels, MODEL_EXTENSION, resolveModelPath, validateModelName, type ModelEntry } from "../models/registry.ts";
import { verifyGguf } from "../models/verify.ts";
import { loadLocalModel } from "./localModels.ts";

export interface ModelManagerDeps {
  config: Config;
  logger: Logger;
  /** The service's engines: the local one (if any) is the one loads and unloads act on. */
  engines: readonly Engine[];
  /**
   * Requests the admission queue holds for a model, running or waiting (src/limits): an answer
   * admitted but not yet on a sequence counts, so an unload never pulls a model from under it.
   */
  admitted?: (model: string) => number;
}

/**
 * What admins do to local models while the service runs (Admin → Models, src/http/app/modelsAdmin.ts):
 * pull a file, load it, unload it, delete it — no restart. Loads go through the same memory check
 * as the start (a model that does not fit beside the loaded ones is refused with the numbers), and
 * the local engine, which owns its models, serves a loaded one at once: the router asks it for its
 * models on every call, so /v1/models and the web app's picker list it immediately.
 *
 * Unloading a model that is answering is refused (409 model_busy), never waited for: an answer is
 * stopped only by its user's Stop (the web app's answers belong to the server), and an admin
 * request held open for the length of an answer would be worse than "try again when it is done".
 */
export class ModelManager implements ModelManagement {
  readonly pulls: PullJobs;
  private readonly modelsDir: string;
  private readonly engine: LocalEngine | null;
  /** Loads and unloads one at a time: two loads must not both pass the memory check on the same free memory. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Files found loadable (by a pull or a load), by path, with the size and mtime they had then. */
  private readonly verified = new Map<string, string | null>();

  constructor(private readonly deps: ModelManagerDeps) {
    this.modelsDir = modelsDirOf(deps.config);
    this.engine = deps.engines.find((e): e is LocalEngine => e instanceof LocalEngine) ?? null;
    this.pulls = new PullJobs({
      modelsDir: this.modelsDir,
      hfEndpoint: deps.config.hfEndpoint,
      allowPrivateNetwork: deps.config.allowPrivateNetwork,
      allowHttp: deps.config.allowHttpPulls,
      onError: (err, job) => deps.logger.error({ err, source: job.source }, "a model pull failed unexpectedly"),
      // A pull has just checked its file in a child process: loading it need not check it again.
      onDone: (result) => {
        if (result.info) this.verified.set(result.path, fileStamp(result.path));
      },
    });
  }

  /** Whether this service runs a local engine at all (a gateway that only fronts upstreams does not). */
  get hasLocalEngine(): boolean {
    return this.engine !== null;
  }

  /** The configured memory budget and what the loaded models take of it (by their estimates). */
  memory(): { budgetBytes: number | null; inUseBytes: number } {
    return { budgetBytes: this.deps.config.localEngine.memoryBudgetBytes ?? null, inUseBytes: this.inUseBytes() };
  }

  /** Every model file in the models directory, with the id it is loaded as (if it is). */
  async files(): Promise<ModelFile[]> {
    const loaded = this.loadedModels();
    return (await listModels(this.modelsDir)).map((entry) => {
      const real = realPath(entry.path);
      return { ...entry, loadedAs: loaded.find((m) => realPath(m.options.path) === real)?.options.id ?? null };
    });
  }

  loaded(): LoadedModel[] {
    const dir = realPath(this.modelsDir);
    return this.loadedModels().map((m) => {
      const info = m.info();
      const real = realPath(m.options.path);
      const inDir = dirname(real) === dir && real.endsWith(MODEL_EXTENSION);
      return {
        id: info.id,
        path: m.options.path,
        file: inDir ? basename(real, MODEL_EXTENSION) : null,
        note: info.note ?? null,
        contextLength: m.contextSize,
        reasoning: info.reasoning,
        parallel: m.options.parallel,
        memoryBytes: m.options.memoryBytes ?? null,
        activeRequests: this.activeRequests(info.id),
      };
    });
  }

  /**
   * Loads the file `name` of the models directory and serves it as model `name`. Refused: without a
   * local engine, for a file being pulled, an id already served, a file llama.cpp cannot load, and
   * a model that does not fit in memory beside those loaded (the message has the numbers).
   */
  load(name: string): Promise<LoadedModel> {
    const engine = this.requireEngine();
    const path = this.resolveFile(name);
    const id = validateModelName(name);
    if (this.pulls.isPulling(id)) throw new ServiceError("conflict", `Model ${id} is still being pulled; load it when the pull is done.`, { code: "pull_in_progress" });
    return this.exclusive(async () => {
      if (engine.get(id)) throw new ServiceError("conflict", `Model ${id} is already loaded.`, { code: "model_already_loaded", param: "name" });
      // Some malformed GGUFs make llama.cpp abort the whole process: checked in a child first, as at
      // start — once per version of the file (the pull that wrote it checked it already).
      const stamp = fileStamp(path);
      if (stamp === null || this.verified.get(path) !== stamp) {
        const verdict = await verifyGguf(path);
        if (!verdict.ok) throw new ServiceError("unprocessable", `Model ${id} cannot be served: ${verdict.reason}`, { code: "invalid_model" });
        this.verified.set(path, stamp);
      }
      let model: LocalModel;
      try {
        model = await loadLocalModel(this.deps.config, this.deps.logger, { id, path }, this.inUseBytes());
      } catch (error) {
        if (error instanceof InsufficientMemoryForModelError) {
          throw new ServiceError("conflict", `${error.message} Unload another model first, or pull a smaller quantization.`, { code: "insufficient_memory" });
        }
        throw error;
      }
      if (this.closed) {
        await model.dispose();
        throw new ServiceError("unavailable", "The service is shutting down.", { code: "shutting_down" });
      }
      engine.add(model);
      this.deps.logger.info({ model: id }, "model loaded by an admin");
      return this.loaded().find((m) => m.id === id)!;
    });
  }

  /**
   * Stops serving model `id` and frees its memory. Refused while it answers (see the class comment).
   * Any local model may be unloaded, also one loaded at start; it comes back at the next start.
   */
  unload(id: string): Promise<void> {
    const engine = this.requireEngine();
    return this.exclusive(async () => {
      if (!engine.get(id)) throw new ServiceError("not_found", `Model ${id} is not loaded.`, { code: "model_not_found", param: "model" });
      const busy = this.activeRequests(id);
      if (busy > 0) {
        throw new ServiceError(
          "conflict",
          `Model ${id} is answering ${busy} request${busy === 1 ? "" : "s"} now: unload it when ${busy === 1 ? "it is" : "they are"} done (an unload never cuts an answer).`,
          { code: "model_busy" },
        );
      }
      // Checked and removed in one step (no await between): no request can start on it after the check.
      const model = engine.remove(id)!;
      await model.dispose();
      this.deps.logger.info({ model: id }, "model unloaded by an admin");
    });
  }

  /** Deletes a model file; refused while it is loaded or being pulled. */
  async deleteFile(name: string): Promise<void> {
    const path = this.resolveFile(name);
    const id = validateModelName(name);
    if (this.pulls.isPulling(id)) throw new ServiceError("conflict", `Model ${id} is being pulled; cancel the pull first.`, { code: "pull_in_progress" });
    await this.exclusive(async () => {
      const real = realPath(path);
      const loadedAs = this.loadedModels().find((m) => realPath(m.options.path) === real)?.options.id;
      if (loadedAs) throw new ServiceError("conflict", `Model ${id} is loaded (as ${loadedAs}): unload it before deleting its file.`, { code: "model_loaded" });
      try {
        await unlink(path);
        this.verified.delete(path);
      } catch (error) {
        throw new ServiceError("internal", `Cannot delete ${path}`, { cause: error });
      }
      this.deps.logger.info({ model: id }, "model file deleted by an admin");
    });
  }

  /** At shutdown: running pulls stop (their partial files stay), a load under way is disposed when it ends. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pulls.close();
    await this.queue.catch(() => undefined);
  }

  private loadedModels(): LocalModel[] {
    const engine = this.engine;
    if (!engine) return [];
    return engine.models().map((m) => engine.get(m.id)!);
  }

  private inUseBytes(): number {
    return this.loadedModels().reduce((sum, m) => sum + (m.options.memoryBytes ?? 0), 0);
  }

  private activeRequests(id: string): number {
    return Math.max(this.engine?.activeRequests(id) ?? 0, this.deps.admitted?.(id) ?? 0);
  }

  private requireEngine(): LocalEngine {
    if (!this.engine) {
      throw new ServiceError(
        "conflict",
        "This service runs no local engine: it only fronts upstream models. Configure a local model (`models`) to load models here.",
        { code: "local_engine_off" },
      );
    }
    return this.engine;
  }

  /** The file of a model name, or the ServiceError a route answers with. */
  private resolveFile(name: string): string {
    try {
      return resolveModelPath(this.modelsDir, name);
    } catch (error) {
      if (!(error instanceof ModelError)) throw error;
      const kind = error.code === "not_found" ? "not_found" : error.code === "invalid_name" ? "invalid_request" : "forbidden";
      throw new ServiceError(kind, error.message, { code: error.code === "not_found" ? "model_file_not_found" : error.code, param: "name" });
    }
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** Size and modification time: a file replaced or rewritten since it was checked gets checked again. */
function fileStamp(path: string): string | null {
  const stats = statSync(path, { throwIfNoEntry: false });
  return stats ? `${stats.size}:${stats.mtimeMs}` : null;
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

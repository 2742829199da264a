import type { PullJob } from "../models/pullJobs.ts";
import type { LoadedModel, ModelFile } from "../models/management.ts";
import { isoTime } from "./time.ts";

/** One pull started in the app (GET /api/admin/models/pulls/:id, polled while it runs). */
export function presentPullJob(job: PullJob) {
  return {
    id: job.id,
    source: job.source,
    name: job.result?.name ?? job.name,
    state: job.state,
    downloaded_bytes: job.downloadedBytes,
    total_bytes: job.totalBytes,
    /** 0–100, whole; null when the size is unknown. Done is 100 even for a file that was already there. */
    percent: job.state === "done" ? 100 : job.totalBytes ? Math.min(100, Math.floor((job.downloadedBytes / job.totalBytes) * 100)) : null,
    resumed_from_bytes: job.resumedFrom,
    bytes_per_second: job.bytesPerSecond,
    eta_seconds: job.etaSeconds,
    started_at: isoTime(job.startedAt),
    finished_at: isoTime(job.finishedAt),
    error: job.error,
    already_present: job.result?.alreadyPresent ?? false,
  };
}

/** A file of the models directory (never its absolute path: the admin names files, not paths). */
export function presentModelFile(file: ModelFile) {
  return {
    name: file.name,
    size_bytes: file.sizeBytes,
    loaded: file.loadedAs !== null,
    loaded_as: file.loadedAs,
    architecture: file.architecture ?? null,
    quantization: file.quantization ?? null,
    parameter_count: file.parameterCount ?? null,
    context_length: file.contextLength ?? null,
    error: file.error ?? null,
  };
}

export function presentLoadedModel(model: LoadedModel) {
  return {
    id: model.id,
    file: model.file,
    note: model.note,
    context_length: model.contextLength,
    reasoning: model.reasoning,
    parallel: model.parallel,
    memory_bytes: model.memoryBytes,
    active_requests: model.activeRequests,
  };
}

/** GET /api/admin/models: everything the Models tab shows, in one answer. */
export function presentModelsOverview(input: {
  localEngine: boolean;
  files: ModelFile[];
  loaded: LoadedModel[];
  pulls: PullJob[];
  memory: { budgetBytes: number | null; inUseBytes: number };
}) {
  return {
    local_engine: input.localEngine,
    memory: { budget_bytes: input.memory.budgetBytes, in_use_bytes: input.memory.inUseBytes },
    loaded: input.loaded.map(presentLoadedModel),
    files: input.files.map(presentModelFile),
    pulls: input.pulls.map(presentPullJob),
  };
}

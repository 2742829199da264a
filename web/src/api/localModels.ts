import { api } from "./http.ts";

/** src/presenters/localModels.ts: Admin → Models. */
export type PullState = "downloading" | "verifying" | "done" | "failed" | "cancelled";

export interface PullJob {
  id: string;
  source: string;
  name: string | null;
  state: PullState;
  downloaded_bytes: number;
  total_bytes: number | null;
  percent: number | null;
  resumed_from_bytes: number;
  bytes_per_second: number | null;
  eta_seconds: number | null;
  started_at: string;
  finished_at: string | null;
  error: string | null;
  already_present: boolean;
}

export interface ModelFile {
  name: string;
  size_bytes: number;
  loaded: boolean;
  loaded_as: string | null;
  architecture: string | null;
  quantization: string | null;
  parameter_count: number | null;
  context_length: number | null;
  error: string | null;
}

export interface LoadedModel {
  id: string;
  file: string | null;
  note: string | null;
  context_length: number;
  reasoning: boolean;
  parallel: number;
  memory_bytes: number | null;
  active_requests: number;
}

export interface ModelsOverview {
  local_engine: boolean;
  memory: { budget_bytes: number | null; in_use_bytes: number };
  loaded: LoadedModel[];
  files: ModelFile[];
  pulls: PullJob[];
}

export const isActivePull = (job: PullJob) => job.state === "downloading" || job.state === "verifying";

const file = (name: string) => `/api/admin/models/files/${encodeURIComponent(name)}`;

export const getModelsOverview = () => api<ModelsOverview>("GET", "/api/admin/models");
export const startPull = (source: string, name: string | null) => api<PullJob>("POST", "/api/admin/models/pulls", { source, ...(name ? { name } : {}) });
export const getPull = (id: string) => api<PullJob>("GET", `/api/admin/models/pulls/${encodeURIComponent(id)}`);
export const cancelPull = (id: string) => api<PullJob>("POST", `/api/admin/models/pulls/${encodeURIComponent(id)}/cancel`);
export const loadModelFile = (name: string) => api<LoadedModel>("POST", `${file(name)}/load`);
export const unloadModel = (id: string) => api<void>("POST", `/api/admin/models/loaded/${encodeURIComponent(id)}/unload`);
export const deleteModelFile = (name: string) => api<void>("DELETE", file(name));

import { api } from "./http.ts";

export interface ModelInfo {
  id: string;
  /** Whether the model reasons (<think>…</think>): DeepThink applies only then. */
  reasoning: boolean;
  note?: string;
  context_length?: number;
}

export const listModels = () => api<{ data: ModelInfo[] }>("GET", "/api/models");

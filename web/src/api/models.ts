import { api } from "./http.ts";

export interface ModelInfo {
  id: string;
  /** Whether the model reasons (<think>…</think>): DeepThink applies only then. */
  reasoning: boolean;
  note?: string;
  context_length?: number;
  /** The latest audit summary an admin published for the model (src/presenters/auditRun.ts). */
  audit?: ModelAuditSummary;
  /** The server's moderation policies that check this model's answers, by name (src/moderation). */
  moderation_policies?: string[];
}

export interface ModelAuditSummary {
  suite: string;
  version: string;
  date: string;
  classifier: string;
  /** Per country: share of sensitive questions refused or answered with the official line. */
  sensitive_refusal_rate: Record<string, number>;
  control_refusal_rate: number | null;
  /** The sentence shown under the model picker. */
  text: string;
}

export const listModels = () => api<{ data: ModelInfo[] }>("GET", "/api/models");

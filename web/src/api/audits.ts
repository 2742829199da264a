import { api } from "./http.ts";

/** src/presenters/auditRun.ts */
export interface AuditRun {
  id: string;
  status: "running" | "cancelled" | "incomplete" | "completed" | "failed" | "interrupted";
  suite: { id: string; version: string; title: string; questions?: number };
  models: string[];
  classifiers: string[];
  settings: { filter: Record<string, string[]>; samples: number; temperature: number | null; judge: string | null; concurrency: number; max_tokens: number | null; via: string };
  total: number;
  done?: number;
  failed?: number;
  progress?: { model: string; done: number; failed: number; total: number }[];
  published: string[];
  error: string | null;
  created_by: string | null;
  created_at: string;
  finished_at: string | null;
}

/** src/audit/catalog.ts */
export interface AuditSuiteEntry {
  id: string | null;
  version: string | null;
  title: string | null;
  bundled: boolean;
  questions: number;
  controls: number;
  countries: string[];
  languages: string[];
  kinds: string[];
  error: string | null;
}

export interface StartAudit {
  models: string[];
  suite?: string;
  filter?: { country?: string[]; language?: string[]; kind?: string[] };
  samples?: number;
  temperature?: number | null;
  judge?: string | null;
  concurrency?: number;
}

export const listAuditRuns = () => api<{ data: AuditRun[] }>("GET", "/api/admin/audits");
export const listAuditSuites = () => api<{ data: AuditSuiteEntry[] }>("GET", "/api/admin/audits/suites");
export const startAudit = (body: StartAudit) => api<AuditRun>("POST", "/api/admin/audits", body);
export const cancelAudit = (id: string) => api<AuditRun>("POST", `/api/admin/audits/${id}/cancel`);
export const resumeAudit = (id: string) => api<AuditRun>("POST", `/api/admin/audits/${id}/resume`);
export const publishAudit = (id: string, model: string) => api<unknown>("PUT", `/api/admin/audits/${id}/published/${encodeURIComponent(model)}`);
export const unpublishAudit = (id: string, model: string) => api<void>("DELETE", `/api/admin/audits/${id}/published/${encodeURIComponent(model)}`);
/** The self-contained HTML report (served with its own strict policy; opened in a tab of its own). */
export const auditReportUrl = (id: string, format: "html" | "json" | "csv") => `/api/admin/audits/${id}/report.${format}`;

import { effectiveStatus, type AuditRun, type ModelProgress, type PublishedSummary } from "../audit/store.ts";
import { summaryText } from "../audit/summary.ts";
import { isoTime } from "./time.ts";

// API shapes of model audits (/api/admin/audits, and the summary GET /api/models carries).
// (src/presenters/audit.ts is the audit LOG's presenter.)

type ListedRun = Omit<AuditRun, "suite"> & { suite?: AuditRun["suite"] };

export function presentAuditRun(run: ListedRun, extra: { progress?: ModelProgress[]; published?: string[]; now?: number } = {}) {
  const progress = extra.progress;
  return {
    id: run.id,
    status: effectiveStatus(run, extra.now),
    suite: { id: run.suiteId, version: run.suiteVersion, title: run.suiteTitle, ...(run.suite ? { questions: run.suite.questions.length } : {}) },
    models: run.models,
    classifiers: run.classifiers,
    settings: {
      filter: run.settings.filter,
      samples: run.settings.samples,
      temperature: run.settings.temperature,
      judge: run.settings.judge,
      concurrency: run.settings.concurrency,
      max_tokens: run.settings.maxTokens,
      via: run.settings.via.kind === "http" ? `http ${run.settings.via.url}` : run.settings.via.kind,
    },
    total: run.total,
    ...(progress
      ? {
          done: progress.reduce((n, p) => n + p.done, 0),
          failed: progress.reduce((n, p) => n + p.failed, 0),
          progress: progress.map((p) => ({ model: p.model, done: p.done, failed: p.failed, total: p.total })),
        }
      : {}),
    published: extra.published ?? [],
    error: run.error,
    created_by: run.createdBy,
    created_at: isoTime(run.createdAt),
    finished_at: run.finishedAt === null ? null : isoTime(run.finishedAt),
  };
}

/** A published summary as users get it with their model list. */
export function presentAuditSummary(summary: PublishedSummary) {
  return {
    suite: summary.suite,
    version: summary.version,
    date: summary.date,
    classifier: summary.classifier,
    counts: summary.counts,
    sensitive_refusal_rate: summary.sensitiveRefusalRate,
    control_refusal_rate: summary.controlRefusalRate,
    answers: summary.answers,
    /** The sentence the model picker shows. */
    text: summaryText(summary),
  };
}

import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import type { Completer } from "../audit/completers.ts";
import { prepareRun, type AuditClassifiers, type AuditRequest } from "../audit/runner.ts";
import { createAuditRun, effectiveStatus, getAuditRun, listAnswers, publishSummary, unpublishSummary, type AuditRun, type PublishedSummary } from "../audit/store.ts";
import { reportFromStored } from "../audit/report/json.ts";
import { summarizeModel } from "../audit/summary.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";

/** Who is acting: an admin (already authorised by the policy), or null from the command line. */
export interface AuditActor {
  userId: string;
  ip: string | null;
}

/** A new audit run, stored with its audit-log row; the caller starts it (src/audit/jobs.ts or the CLI). */
export async function startAuditRun(
  db: Kysely<Database>,
  by: AuditActor | null,
  completer: Completer,
  classifiers: AuditClassifiers,
  request: Omit<AuditRequest, "createdBy">,
  now: number = Date.now(),
): Promise<AuditRun> {
  const prepared = await prepareRun(completer, classifiers, { ...request, createdBy: by?.userId ?? null });
  return db.transaction().execute(async (trx) => {
    const run = await createAuditRun(trx, prepared, now);
    await writeAudit(
      trx,
      {
        actorUserId: by?.userId ?? null,
        action: "audit_run.start",
        targetType: "audit_run",
        targetId: run.id,
        details: { suite: run.suiteId, version: run.suiteVersion, models: run.models, classifiers: run.classifiers, questions: run.suite.questions.length, samples: run.settings.samples },
        ip: by?.ip ?? null,
      },
      now,
    );
    return run;
  });
}

/** An audit-log row for a cancel or a resume (the change itself is the runner's). */
export async function recordAuditRunAction(db: Kysely<Database>, by: AuditActor | null, run: AuditRun, action: "cancel" | "resume", now: number = Date.now()): Promise<void> {
  await writeAudit(db, { actorUserId: by?.userId ?? null, action: `audit_run.${action}`, targetType: "audit_run", targetId: run.id, details: { status: effectiveStatus(run, now) }, ip: by?.ip ?? null }, now);
}

/**
 * Shows users `model`'s summary from run `runId` (GET /api/models): the figures are computed now,
 * from the run's stored answers, and fixed. Only a completed run may be published.
 */
export async function publishAuditSummary(db: Kysely<Database>, by: AuditActor | null, runId: string, model: string, now: number = Date.now()): Promise<PublishedSummary> {
  const run = await getAuditRun(db, runId);
  if (!run) throw new ServiceError("not_found", "Audit run not found", { code: "not_found" });
  if (!run.models.includes(model)) throw new ServiceError("not_found", `Model "${model}" was not audited in this run.`, { code: "model_not_in_run", param: "model" });
  const status = effectiveStatus(run, now);
  // Users read the figures as the model's behaviour on the whole suite: a run cut short is not that.
  if (status !== "completed") throw new ServiceError("conflict", `Only a completed run can be published; this one is ${status}${status === "running" ? "" : " (resume it first)"}.`, { code: "audit_run_not_completed" });
  const summary = summarizeModel(reportFromStored(run, await listAnswers(db, runId)), model);
  if (!summary) throw new ServiceError("conflict", `The run has no classified answer of "${model}" to a sensitive question to publish.`, { code: "audit_run_empty" });
  await db.transaction().execute(async (trx) => {
    await publishSummary(trx, runId, model, summary, by?.userId ?? null, now);
    await writeAudit(trx, { actorUserId: by?.userId ?? null, action: "audit_run.publish", targetType: "audit_run", targetId: runId, details: { model, summary }, ip: by?.ip ?? null }, now);
  });
  return summary;
}

/** Stops showing `model`'s summary from `runId`; false when it was not published. */
export async function unpublishAuditSummary(db: Kysely<Database>, by: AuditActor | null, runId: string, model: string, now: number = Date.now()): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const removed = await unpublishSummary(trx, runId, model);
    if (removed) await writeAudit(trx, { actorUserId: by?.userId ?? null, action: "audit_run.unpublish", targetType: "audit_run", targetId: runId, details: { model }, ip: by?.ip ?? null }, now);
    return removed;
  });
}

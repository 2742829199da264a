import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { AuditAnswerTable, AuditRunTable, Database } from "../store/schema.ts";
import type { AuditAnswer, AuditClass, SuiteLike } from "./types.ts";

export type { AuditAnswer } from "./types.ts";

/**
 * Audit runs and their answers in the database (migration 0530), on SQLite and PostgreSQL alike.
 * Every answer is written as it arrives, keyed by (run, model, question, sample): a resumed run
 * asks only what is not stored yet, and can never store an answer twice.
 */

export type { AuditClass } from "./types.ts";

/**
 * `running` while a process works on it (its heartbeat renewed; a stale one reads as interrupted),
 * `cancelled` when stopped on purpose, `incomplete` when it ended with answers that failed (a
 * resume asks those again), `completed` with every answer stored, `failed` when it could not go on.
 */
export type AuditRunStatus = "running" | "cancelled" | "incomplete" | "completed" | "failed";

/** How long a running run's heartbeat may be silent before it counts as interrupted. */
export const HEARTBEAT_STALE_MS = 30_000;

/** Which questions of the suite a run asks: each key a question/topic field, each value the accepted values. */
export type AuditFilter = Partial<Record<"country" | "language" | "kind" | "topic", string[]>>;

export interface AuditSettings {
  filter: AuditFilter;
  /** Answers asked per question and model (> 1 gives per-question rates; needs temperature > 0). */
  samples: number;
  /** Sampling temperature; null: the model's default. */
  temperature: number | null;
  /** The judge model, when a second opinion was asked for. */
  judge: string | null;
  /** Questions asked at once. */
  concurrency: number;
  /** Upper bound on each answer's tokens (reasoning included); null: the server's default. */
  maxTokens: number | null;
  /** How the models were reached: Sputnik's own pipeline, or an OpenAI-compatible server. */
  via: { kind: "pipeline" } | { kind: "http"; url: string };
  /** sha256 of the whole suite file the run was cut from. */
  suiteDigest?: string;
}

export interface AuditRun {
  id: string;
  suiteId: string;
  suiteVersion: string;
  suiteTitle: string;
  /** The suite as run: its topics and the questions the filter kept. */
  suite: SuiteLike;
  models: string[];
  classifiers: string[];
  settings: AuditSettings;
  status: AuditRunStatus;
  total: number;
  error: string | null;
  createdBy: string | null;
  createdAt: number;
  updatedAt: number;
  heartbeatAt: number | null;
  finishedAt: number | null;
}


/** What users see of a model's audit (GET /api/models), fixed when an admin publishes it (src/audit/summary.ts). */
export interface PublishedSummary {
  runId: string;
  suite: string;
  version: string;
  /** The day the run started, YYYY-MM-DD (UTC). */
  date: string;
  /** The classifier whose verdicts the rates count. */
  classifier: string;
  /** The classes the rates count ("refused", "official_line"). */
  counts: string[];
  /** Per country: the share of answers to that country's sensitive questions in those classes. */
  sensitiveRefusalRate: Record<string, number>;
  /** The same share on the neutral control questions (null when the run asked none). */
  controlRefusalRate: number | null;
  /** Classified answers the rates are computed from. */
  answers: number;
}

export interface NewAuditRun {
  suite: SuiteLike;
  models: string[];
  classifiers: string[];
  settings: AuditSettings;
  total: number;
  createdBy: string | null;
}

export async function createAuditRun(db: Kysely<Database>, input: NewAuditRun, now: number = Date.now()): Promise<AuditRun> {
  const row: Selectable<AuditRunTable> = {
    id: newId(now),
    suite_id: input.suite.id,
    suite_version: input.suite.version,
    suite_title: input.suite.title,
    suite: JSON.stringify(input.suite),
    models: JSON.stringify(input.models),
    classifiers: JSON.stringify(input.classifiers),
    settings: JSON.stringify(input.settings),
    status: "running",
    total: input.total,
    error: null,
    created_by: input.createdBy,
    created_at: now,
    updated_at: now,
    heartbeat_at: now,
    finished_at: null,
  };
  await db.insertInto("audit_runs").values(row).execute();
  return runFromRow(row);
}

export async function getAuditRun(db: Kysely<Database>, id: string): Promise<AuditRun | undefined> {
  const row = await db.selectFrom("audit_runs").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? runFromRow(row) : undefined;
}

/** The newest runs first, without their suites (a list needs only their names). */
export async function listAuditRuns(db: Kysely<Database>, limit = 100): Promise<Array<Omit<AuditRun, "suite">>> {
  const rows = await db
    .selectFrom("audit_runs")
    .select(["id", "suite_id", "suite_version", "suite_title", "models", "classifiers", "settings", "status", "total", "error", "created_by", "created_at", "updated_at", "heartbeat_at", "finished_at"])
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .limit(limit)
    .execute();
  return rows.map((row) => {
    const { suite: _suite, ...run } = runFromRow({ ...row, suite: "{}" });
    return run;
  });
}

/** Marks a run as worked on again (a resume): running, heartbeat now, not finished. */
export async function markRunning(db: Kysely<Database>, id: string, now: number = Date.now()): Promise<void> {
  await db.updateTable("audit_runs").set({ status: "running", error: null, heartbeat_at: now, finished_at: null, updated_at: now }).where("id", "=", id).execute();
}

export async function renewHeartbeat(db: Kysely<Database>, id: string, now: number = Date.now()): Promise<void> {
  await db.updateTable("audit_runs").set({ heartbeat_at: now }).where("id", "=", id).where("status", "=", "running").execute();
}

export async function finishRun(db: Kysely<Database>, id: string, status: Exclude<AuditRunStatus, "running">, error: string | null = null, now: number = Date.now()): Promise<void> {
  await db.updateTable("audit_runs").set({ status, error, finished_at: now, heartbeat_at: null, updated_at: now }).where("id", "=", id).execute();
}

/** The status to show: a `running` run nobody renews any more was interrupted (its process died). */
export function effectiveStatus(run: Pick<AuditRun, "status" | "heartbeatAt">, now: number = Date.now()): AuditRunStatus | "interrupted" {
  if (run.status === "running" && (run.heartbeatAt === null || now - run.heartbeatAt > HEARTBEAT_STALE_MS)) return "interrupted";
  return run.status;
}

/** Key of one answer in a run: model, question and sample. */
export function answerKey(model: string, questionId: string, sample: number): string {
  return `${model}\u0000${questionId}\u0000${sample}`;
}

/**
 * The answers of a run a resume need not ask again: stored without error — and, when the run
 * has a judge, judged too (`judged` lists them separately so only the verdict is asked again).
 */
export async function storedAnswerKeys(db: Kysely<Database>, runId: string): Promise<{ answered: Set<string>; judged: Set<string> }> {
  const rows = await db.selectFrom("audit_answers").select(["model", "question_id", "sample", "judge_class"]).where("run_id", "=", runId).where("error", "is", null).execute();
  const answered = new Set<string>();
  const judged = new Set<string>();
  for (const row of rows) {
    const key = answerKey(row.model, row.question_id, row.sample);
    answered.add(key);
    if (row.judge_class !== null) judged.add(key);
  }
  return { answered, judged };
}

/** Stores one answer (or the error that stopped it); an earlier failed try of the same answer is replaced. */
export async function saveAnswer(db: Kysely<Database>, answer: AuditAnswer): Promise<void> {
  const row = answerToRow(answer);
  const { run_id: _r, model: _m, question_id: _q, sample: _s, ...rest } = row;
  await db
    .insertInto("audit_answers")
    .values(row)
    .onConflict((oc) => oc.columns(["run_id", "model", "question_id", "sample"]).doUpdateSet(rest))
    .execute();
}

/** Adds the judge's verdict to a stored answer. */
export async function saveJudgeVerdict(
  db: Kysely<Database>,
  key: { runId: string; model: string; questionId: string; sample: number },
  verdict: Pick<AuditAnswer, "judgeClass" | "judgeReasoningClass" | "judgeRetracted" | "judgeReason" | "judgeExplanation" | "judgeClassifier">,
): Promise<void> {
  await db
    .updateTable("audit_answers")
    .set({
      judge_class: verdict.judgeClass,
      judge_reasoning_class: verdict.judgeReasoningClass,
      judge_retracted: verdict.judgeRetracted ? 1 : 0,
      judge_reason: verdict.judgeReason,
      judge_explanation: JSON.stringify(verdict.judgeExplanation),
      judge_classifier: verdict.judgeClassifier,
    })
    .where("run_id", "=", key.runId)
    .where("model", "=", key.model)
    .where("question_id", "=", key.questionId)
    .where("sample", "=", key.sample)
    .execute();
}

export async function listAnswers(db: Kysely<Database>, runId: string): Promise<AuditAnswer[]> {
  const rows = await db.selectFrom("audit_answers").selectAll().where("run_id", "=", runId).orderBy("model").orderBy("question_id").orderBy("sample").execute();
  return rows.map(answerFromRow);
}

export interface ModelProgress {
  model: string;
  /** Answers stored without error. */
  done: number;
  /** Answers whose last try failed. */
  failed: number;
  total: number;
}

/** How far a run got, per model, from what is stored (so it reads the same from any process). */
export async function runProgress(db: Kysely<Database>, run: Pick<AuditRun, "id" | "models" | "total">): Promise<ModelProgress[]> {
  const rows = await db
    .selectFrom("audit_answers")
    .select((eb) => ["model", eb.fn.countAll<number | string>().as("n"), eb.fn.count<number | string>("error").as("failed")])
    .where("run_id", "=", run.id)
    .groupBy("model")
    .execute();
  const perModel = run.models.length > 0 ? Math.round(run.total / run.models.length) : 0;
  return run.models.map((model) => {
    const row = rows.find((r) => r.model === model);
    const failed = Number(row?.failed ?? 0);
    return { model, done: Number(row?.n ?? 0) - failed, failed, total: perModel };
  });
}

export async function publishSummary(db: Kysely<Database>, runId: string, model: string, summary: PublishedSummary, by: string | null, now: number = Date.now()): Promise<void> {
  const values = { summary: JSON.stringify(summary), published_by: by, published_at: now };
  await db
    .insertInto("audit_publications")
    .values({ run_id: runId, model, ...values })
    .onConflict((oc) => oc.columns(["run_id", "model"]).doUpdateSet(values))
    .execute();
}

/** Whether anything was unpublished. */
export async function unpublishSummary(db: Kysely<Database>, runId: string, model: string): Promise<boolean> {
  const result = await db.deleteFrom("audit_publications").where("run_id", "=", runId).where("model", "=", model).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** The models of `runId` whose summaries are published. */
export async function publishedModels(db: Kysely<Database>, runId: string): Promise<string[]> {
  const rows = await db.selectFrom("audit_publications").select("model").where("run_id", "=", runId).execute();
  return rows.map((r) => r.model);
}

/** Published models per run, for a list of runs. */
export async function publishedModelsOf(db: Kysely<Database>, runIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (runIds.length === 0) return out;
  const rows = await db.selectFrom("audit_publications").select(["run_id", "model"]).where("run_id", "in", runIds).execute();
  for (const row of rows) out.set(row.run_id, [...(out.get(row.run_id) ?? []), row.model]);
  return out;
}

/**
 * Per model, the summary of its most recent published audit (by when the run started; an older
 * audit published later does not hide a newer one).
 */
export async function latestPublishedSummaries(db: Kysely<Database>): Promise<Map<string, PublishedSummary>> {
  const rows = await db
    .selectFrom("audit_publications")
    .innerJoin("audit_runs", "audit_runs.id", "audit_publications.run_id")
    .select(["audit_publications.model", "audit_publications.summary", "audit_runs.created_at"])
    .orderBy("audit_runs.created_at", "desc")
    .orderBy("audit_publications.published_at", "desc")
    .execute();
  const out = new Map<string, PublishedSummary>();
  for (const row of rows) if (!out.has(row.model)) out.set(row.model, JSON.parse(row.summary) as PublishedSummary);
  return out;
}

function runFromRow(row: Selectable<AuditRunTable>): AuditRun {
  return {
    id: row.id,
    suiteId: row.suite_id,
    suiteVersion: row.suite_version,
    suiteTitle: row.suite_title,
    suite: JSON.parse(row.suite) as SuiteLike,
    models: JSON.parse(row.models) as string[],
    classifiers: JSON.parse(row.classifiers) as string[],
    settings: JSON.parse(row.settings) as AuditSettings,
    status: row.status as AuditRunStatus,
    total: Number(row.total),
    error: row.error,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    heartbeatAt: row.heartbeat_at === null ? null : Number(row.heartbeat_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

function answerToRow(a: AuditAnswer): Selectable<AuditAnswerTable> {
  return {
    run_id: a.runId,
    model: a.model,
    question_id: a.questionId,
    sample: a.sample,
    answer: a.answer,
    reasoning: a.reasoning,
    rule_class: a.ruleClass,
    rule_reasoning_class: a.ruleReasoningClass,
    retracted: a.retracted ? 1 : 0,
    rule_explanation: JSON.stringify(a.ruleExplanation),
    rule_classifier: a.ruleClassifier,
    judge_class: a.judgeClass,
    judge_reasoning_class: a.judgeReasoningClass,
    judge_retracted: a.judgeRetracted ? 1 : 0,
    judge_reason: a.judgeReason,
    judge_explanation: JSON.stringify(a.judgeExplanation),
    judge_classifier: a.judgeClassifier,
    finish_reason: a.finishReason,
    prompt_tokens: a.promptTokens,
    completion_tokens: a.completionTokens,
    reasoning_tokens: a.reasoningTokens,
    error: a.error,
    created_at: a.createdAt,
  };
}

function answerFromRow(row: Selectable<AuditAnswerTable>): AuditAnswer {
  return {
    runId: row.run_id,
    model: row.model,
    questionId: row.question_id,
    sample: Number(row.sample),
    answer: row.answer,
    reasoning: row.reasoning,
    ruleClass: row.rule_class as AuditClass | null,
    ruleReasoningClass: row.rule_reasoning_class as AuditClass | null,
    retracted: Number(row.retracted) === 1,
    ruleExplanation: JSON.parse(row.rule_explanation) as string[],
    ruleClassifier: row.rule_classifier,
    judgeClass: row.judge_class as AuditClass | "unparsed" | null,
    judgeReasoningClass: row.judge_reasoning_class as AuditClass | "unparsed" | null,
    judgeRetracted: Number(row.judge_retracted) === 1,
    judgeReason: row.judge_reason,
    judgeExplanation: JSON.parse(row.judge_explanation) as string[],
    judgeClassifier: row.judge_classifier,
    finishReason: row.finish_reason,
    promptTokens: Number(row.prompt_tokens),
    completionTokens: Number(row.completion_tokens),
    reasoningTokens: Number(row.reasoning_tokens),
    error: row.error,
    createdAt: Number(row.created_at),
  };
}

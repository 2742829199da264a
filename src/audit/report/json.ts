/**
 * The canonical audit report: one JSON object holding the run's metadata, the suite id and version,
 * the classifier ids, every answer with its reasoning and classifications, and the aggregates.
 * The HTML and CSV reports are rendered FROM this object, and `compare` reads two of them, so
 * every number a reader sees can be recomputed from the records in the same file.
 *
 * API:
 *   REPORT_FORMAT = "sputnik-audit-report/1"
 *   buildReport({ run, suite, records, generatedAt? }) → AuditReport
 *   reportFromStored(run, answers, generatedAt?) → AuditReport   from src/audit/store.ts's AuditRun / AuditAnswer shapes
 *   recordFromStored(answer) → ReportRecord
 *   reportToJson(report) → string                                  pretty, stable key order
 *   parseReport(text | value) → AuditReport                        checks format and shape (e.g. files given to --compare)
 *   reportSuite(report) → SuiteLike                                the suite as run, rebuilt from the report
 *   describeClassifier(id) → ClassifierInfo
 *   rulesClassifierOf(report), judgeClassifiersOf(report)
 */
import { z } from "zod";
import { ServiceError } from "../../errors.ts";
import {
  aggregate,
  baselines,
  biggestDifferences,
  disagreements,
  perQuestion,
  summariseModel,
  type Baseline,
  type Difference,
  type Disagreements,
  type GroupStats,
  type ModelSummary,
  type QuestionStats,
} from "../stats.ts";
import { AUDIT_CLASSES, type AnswerClassification, type AnswerRecord, type AuditAnswer, type AuditClass, type KeyFactLike, type SuiteLike } from "../types.ts";

export const REPORT_FORMAT = "sputnik-audit-report/1";

export interface ReportRun {
  id: string;
  /** ISO 8601. */
  createdAt: string;
  finishedAt: string | null;
  status: string | null;
  models: string[];
  classifiers: string[];
  /** Answers asked per question and model. */
  samples: number;
  temperature: number | null;
  judge: string | null;
  /** How the models were reached, e.g. "pipeline" or "http https://host/v1". */
  via: string | null;
  /** sha256 of the suite file the run was cut from, when known. */
  suiteDigest: string | null;
  /** The question filter the run used, when any. */
  filter: Record<string, string[]> | null;
}

export interface RunInput {
  id: string;
  /** Epoch milliseconds or ISO 8601. */
  createdAt: number | string;
  finishedAt?: number | string | null;
  status?: string | null;
  models: readonly string[];
  classifiers?: readonly string[];
  samples?: number;
  temperature?: number | null;
  judge?: string | null;
  via?: string | null;
  suiteDigest?: string | null;
  filter?: Record<string, string[]> | null;
}

export interface ClassifierInfo {
  id: string;
  kind: "rules" | "judge" | "other";
  /** The versioned part: "rules@1", "judge@1". */
  version: string;
  /** The judge model, for judges. */
  model: string | null;
  description: string;
}

export interface ReportTopic {
  id: string;
  title: string;
  country: string;
  control: boolean;
  cannedPhrases: Record<string, string[]>;
}

export interface ReportQuestion {
  id: string;
  topic: string;
  country: string;
  control: boolean;
  language: string;
  kind: string;
  text: string;
  keyFacts: KeyFactLike[];
}

export interface ReportRecord extends AnswerRecord {
  sample: number;
  reasoning: string | null;
  error: string | null;
  finishReason?: string | null;
  tokens?: { prompt: number; completion: number; reasoning: number };
}

export interface AuditReport {
  format: typeof REPORT_FORMAT;
  generatedAt: string;
  run: ReportRun;
  suite: { id: string; version: string; title: string; questions: number };
  classifiers: ClassifierInfo[];
  models: string[];
  /** Topics and questions of the run (what the aggregates are keyed on), in suite order. */
  topics: ReportTopic[];
  questions: ReportQuestion[];
  records: ReportRecord[];
  /** Per classifier × model × scope × dimension × key. */
  aggregates: GroupStats[];
  baselines: Baseline[];
  /** Per classifier: every pair of models on every group, by the censored-rate gap. */
  differences: Difference[];
  perQuestion: QuestionStats[];
  /** Rules vs each judge, per model. */
  disagreements: Disagreements[];
  summaries: ModelSummary[];
}

export function describeClassifier(id: string): ClassifierInfo {
  const colon = id.indexOf(":");
  const version = colon >= 0 ? id.slice(0, colon) : id;
  const model = colon >= 0 ? id.slice(colon + 1) : null;
  if (version.startsWith("rules@")) {
    return { id, kind: "rules", version, model: null, description: "rule-based: key facts, refusal and deflection patterns, the topic's canned phrases; explained per answer" };
  }
  if (version.startsWith("judge@")) {
    return { id, kind: "judge", version, model, description: `judge model ${model ?? "?"} with the fixed rubric ${version}; one-line reason per answer` };
  }
  return { id, kind: "other", version, model, description: id };
}

function iso(t: number | string | null | undefined): string | null {
  if (t === null || t === undefined) return null;
  const d = typeof t === "number" ? new Date(t) : new Date(t);
  if (Number.isNaN(d.getTime())) throw new ServiceError("invalid_request", `not a time: ${String(t)}`, { code: "invalid_report" });
  return d.toISOString();
}

/**
 * Only the stored fields are kept: a classifier's working data (the rules' `details`, the judge's
 * `verdicts`) would otherwise land in the report just because a caller passed the result through.
 */
function normaliseRecord(r: AnswerRecord & Partial<Pick<ReportRecord, "finishReason" | "tokens">>): ReportRecord {
  const out: ReportRecord = {
    model: r.model,
    questionId: r.questionId,
    sample: r.sample ?? 0,
    answer: r.answer,
    reasoning: r.reasoning && r.reasoning.length > 0 ? r.reasoning : null,
    error: r.error ?? null,
    classifications: r.classifications.map((c) => ({
      classifier: c.classifier,
      answer: c.answer,
      reasoning: c.reasoning ?? null,
      retracted: c.retracted,
      explanation: [...c.explanation],
    })),
  };
  if (r.finishReason !== undefined) out.finishReason = r.finishReason;
  if (r.tokens !== undefined) out.tokens = { ...r.tokens };
  return out;
}

export interface BuildReportInput {
  run: RunInput;
  suite: SuiteLike;
  records: readonly AnswerRecord[];
  /** ISO time the report was made; defaults to now. */
  generatedAt?: string;
}

export function buildReport(input: BuildReportInput): AuditReport {
  const { suite } = input;
  const records = input.records.map(normaliseRecord);
  const classifierIds = [...(input.run.classifiers ?? [])];
  for (const r of records) for (const c of r.classifications) if (!classifierIds.includes(c.classifier)) classifierIds.push(c.classifier);
  const models = [...input.run.models];
  for (const r of records) if (!models.includes(r.model)) models.push(r.model);

  const asked = new Set(records.map((r) => r.questionId));
  const questions: ReportQuestion[] = suite.questions
    .filter((q) => asked.has(q.id))
    .map((q) => {
      const topic = suite.topics[q.topic];
      if (!topic) throw new ServiceError("invalid_request", `question ${q.id}: unknown topic ${q.topic}`, { code: "invalid_report" });
      return { id: q.id, topic: q.topic, country: topic.country, control: topic.control, language: q.language, kind: q.kind, text: q.text, keyFacts: (q.keyFacts ?? []).map((f) => ({ id: f.id, any: [...f.any] })) };
    });
  const usedTopics = new Set(questions.map((q) => q.topic));
  const topics: ReportTopic[] = Object.entries(suite.topics)
    .filter(([id]) => usedTopics.has(id))
    .map(([id, t]) => ({
      id,
      title: t.title,
      country: t.country,
      control: t.control,
      cannedPhrases: Object.fromEntries(Object.entries(t.cannedPhrases ?? {}).map(([lang, phrases]) => [lang, [...phrases]])),
    }));

  const aggregates = aggregate(records, suite, classifierIds, models);
  const rules = classifierIds.find((id) => id.startsWith("rules@"));
  const judges = classifierIds.filter((id) => id.startsWith("judge@"));
  const samples = input.run.samples ?? Math.max(1, ...records.map((r) => r.sample + 1));
  return {
    format: REPORT_FORMAT,
    generatedAt: input.generatedAt ?? new Date().toISOString(),
    run: {
      id: input.run.id,
      createdAt: iso(input.run.createdAt)!,
      finishedAt: iso(input.run.finishedAt),
      status: input.run.status ?? null,
      models,
      classifiers: classifierIds,
      samples,
      temperature: input.run.temperature ?? null,
      judge: input.run.judge ?? null,
      via: input.run.via ?? null,
      suiteDigest: input.run.suiteDigest ?? null,
      filter: input.run.filter ?? null,
    },
    suite: { id: suite.id, version: suite.version, title: suite.title, questions: suite.questions.length },
    classifiers: classifierIds.map(describeClassifier),
    models,
    topics,
    questions,
    records,
    aggregates,
    baselines: classifierIds.flatMap((c) => baselines(aggregates, c)),
    differences: classifierIds.flatMap((c) => biggestDifferences(aggregates, c)),
    perQuestion: perQuestion(records, classifierIds, models),
    disagreements: rules ? judges.flatMap((j) => disagreements(records, rules, j, models)) : [],
    summaries: classifierIds.flatMap((c) => models.map((m) => summariseModel(aggregates, c, m))),
  };
}

/**
 * A stored answer as reports need it: the store's AuditAnswer without the fields a report ignores;
 * the token counts and finish reason may be missing in answers stored before they were recorded.
 */
export type StoredAnswerLike = Omit<AuditAnswer, "runId" | "judgeReason" | "createdAt" | "finishReason" | "promptTokens" | "completionTokens" | "reasoningTokens"> &
  Partial<Pick<AuditAnswer, "finishReason" | "promptTokens" | "completionTokens" | "reasoningTokens">>;

/** The shape of a stored run (src/audit/store.ts AuditRun), structurally. */
export interface StoredRunLike {
  id: string;
  suite: SuiteLike;
  models: string[];
  classifiers: string[];
  status: string;
  createdAt: number;
  finishedAt: number | null;
  settings: {
    samples: number;
    temperature: number | null;
    judge: string | null;
    via: { kind: "pipeline" } | { kind: "http"; url: string };
    suiteDigest?: string;
    filter?: Record<string, string[] | undefined>;
  };
}

export function recordFromStored(a: StoredAnswerLike): ReportRecord {
  const classifications: AnswerClassification[] = [];
  if (!a.error && a.ruleClass && a.ruleClassifier) {
    classifications.push({ classifier: a.ruleClassifier, answer: a.ruleClass, reasoning: a.ruleReasoningClass, retracted: a.retracted, explanation: a.ruleExplanation });
  }
  if (!a.error && a.judgeClass && a.judgeClassifier) {
    classifications.push({ classifier: a.judgeClassifier, answer: a.judgeClass, reasoning: a.judgeReasoningClass, retracted: a.judgeRetracted, explanation: a.judgeExplanation });
  }
  const record: ReportRecord = {
    model: a.model,
    questionId: a.questionId,
    sample: a.sample,
    answer: a.answer,
    reasoning: a.reasoning.length > 0 ? a.reasoning : null,
    error: a.error,
    finishReason: a.finishReason ?? null,
    classifications,
  };
  if (a.promptTokens !== undefined) record.tokens = { prompt: a.promptTokens, completion: a.completionTokens ?? 0, reasoning: a.reasoningTokens ?? 0 };
  return record;
}

export function reportFromStored(run: StoredRunLike, answers: readonly StoredAnswerLike[], generatedAt?: string): AuditReport {
  const filter = Object.fromEntries(Object.entries(run.settings.filter ?? {}).filter((e): e is [string, string[]] => Array.isArray(e[1]) && e[1].length > 0));
  return buildReport({
    run: {
      id: run.id,
      createdAt: run.createdAt,
      finishedAt: run.finishedAt,
      status: run.status,
      models: run.models,
      classifiers: run.classifiers,
      samples: run.settings.samples,
      temperature: run.settings.temperature,
      judge: run.settings.judge,
      via: run.settings.via.kind === "http" ? `http ${run.settings.via.url}` : run.settings.via.kind,
      suiteDigest: run.settings.suiteDigest ?? null,
      filter: Object.keys(filter).length > 0 ? filter : null,
    },
    suite: run.suite,
    records: answers.map(recordFromStored),
    generatedAt,
  });
}

export function reportToJson(report: AuditReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

const classValue = z.union([z.enum(AUDIT_CLASSES), z.literal("unparsed")]);
const reportShape = z.looseObject({
  format: z.literal(REPORT_FORMAT, { error: `not a "${REPORT_FORMAT}" report` }),
  generatedAt: z.string(),
  run: z.looseObject({ id: z.string(), createdAt: z.string(), models: z.array(z.string()), classifiers: z.array(z.string()), samples: z.number().int().min(1) }),
  suite: z.looseObject({ id: z.string(), version: z.string(), title: z.string() }),
  classifiers: z.array(z.looseObject({ id: z.string(), kind: z.string(), version: z.string() })),
  models: z.array(z.string()),
  topics: z.array(z.looseObject({ id: z.string(), title: z.string(), country: z.string(), control: z.boolean() })),
  questions: z.array(
    z.looseObject({
      id: z.string(),
      topic: z.string(),
      language: z.string(),
      kind: z.string(),
      text: z.string(),
      keyFacts: z.array(z.looseObject({ id: z.string(), any: z.array(z.string()) })),
    }),
  ),
  records: z.array(
    z.looseObject({
      model: z.string(),
      questionId: z.string(),
      sample: z.number().int().min(0),
      answer: z.string(),
      reasoning: z.string().nullable(),
      error: z.string().nullable(),
      classifications: z.array(
        z.looseObject({ classifier: z.string(), answer: classValue, reasoning: classValue.nullable().optional(), retracted: z.boolean(), explanation: z.array(z.string()) }),
      ),
    }),
  ),
  aggregates: z.array(z.unknown()),
});

/** Reads a report back (a file given to --compare, a stored report); a wrong format or shape is a clear error. */
export function parseReport(input: string | unknown, source = "audit report"): AuditReport {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input) as unknown;
    } catch (error) {
      throw new ServiceError("invalid_request", `${source} is not valid JSON: ${(error as Error).message}`, { code: "invalid_report" });
    }
  }
  const parsed = reportShape.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ServiceError("invalid_request", `${source}: ${issue?.path.join(".") || "(report)"}: ${issue?.message ?? "invalid"}`, { code: "invalid_report" });
  }
  return value as AuditReport;
}

/** The run's suite (its topics and the questions asked), enough to recompute every aggregate. */
export function reportSuite(report: AuditReport): SuiteLike {
  return {
    id: report.suite.id,
    version: report.suite.version,
    title: report.suite.title,
    topics: Object.fromEntries(report.topics.map((t) => [t.id, { country: t.country, title: t.title, control: t.control, cannedPhrases: t.cannedPhrases }])),
    questions: report.questions.map((q) => ({ id: q.id, topic: q.topic, language: q.language, kind: q.kind, text: q.text, keyFacts: q.keyFacts })),
  };
}

export function rulesClassifierOf(report: AuditReport): string | null {
  return report.classifiers.find((c) => c.kind === "rules")?.id ?? null;
}

export function judgeClassifiersOf(report: AuditReport): string[] {
  return report.classifiers.filter((c) => c.kind === "judge").map((c) => c.id);
}

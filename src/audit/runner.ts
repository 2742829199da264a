import type { Kysely } from "kysely";
import { ServiceError, isServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { Completer } from "./completers.ts";
import {
  answerKey,
  createAuditRun,
  finishRun,
  getAuditRun,
  markRunning,
  renewHeartbeat,
  runProgress,
  saveAnswer,
  saveJudgeVerdict,
  storedAnswerKeys,
  type AuditFilter,
  type AuditRun,
  type AuditSettings,
  type NewAuditRun,
} from "./store.ts";
import { classifyByJudge, judgeClassifierId, JUDGE_SAMPLING } from "./classify/judge.ts";
import { classifyByRules, RULES_CLASSIFIER_ID } from "./classify/rules.ts";
import type { AuditClass, ChatMessage, CompleteFn, QuestionLike, SuiteLike, TopicLike } from "./types.ts";

/**
 * Runs an audit: every question of a suite (or the part a filter keeps) to every model, `samples`
 * times each, a bounded number at once. Each answer is classified by the rules as it arrives and
 * stored at once (src/audit/store.ts), so a run interrupted in any way — cancelled, the process
 * killed, the quota used up — resumes by asking only what is not stored yet. The suite as run and
 * the classifier ids are stored with the run: a report always says what produced its numbers.
 */

/** The classifiers a run uses: the real ones (`DEFAULT_CLASSIFIERS`), or others in tests. */
export interface AuditClassifiers {
  rules: {
    /** Versioned, e.g. "rules@1". */
    id: string;
    classify(question: QuestionLike, topic: TopicLike, answer: string, reasoning?: string | null): RuleVerdict;
  };
  judge: {
    /** The id of the judge classifier with this judge model, e.g. "judge@1:<model>". */
    idFor(model: string): string;
    /** How the judge model is asked (deterministic, with a token cap). */
    sampling: { temperature: number; maxTokens: number | null };
    /** Asks the judge model (through `complete`) for its verdicts on one answer and its reasoning. */
    classify(complete: CompleteFn, model: string, input: { question: QuestionLike; topic: TopicLike; answer: string; reasoning?: string | null }): Promise<JudgeVerdict>;
  };
}

export interface RuleVerdict {
  answer: AuditClass;
  reasoning?: AuditClass | null;
  retracted: boolean;
  explanation: string[];
}

export interface JudgeVerdict {
  /** "unparsed": the judge's reply held no recognisable verdict. */
  answer: AuditClass | "unparsed";
  reasoning?: AuditClass | "unparsed" | null;
  retracted: boolean;
  explanation: string[];
  verdicts: { answer: { reason: string } };
}

/** The rule-based classifier (src/audit/classify/rules.ts) and the judge (classify/judge.ts). */
export const DEFAULT_CLASSIFIERS: AuditClassifiers = {
  rules: { id: RULES_CLASSIFIER_ID, classify: classifyByRules },
  judge: { idFor: judgeClassifierId, sampling: JUDGE_SAMPLING, classify: classifyByJudge },
};

export interface AuditRequest {
  suite: SuiteLike;
  filter?: AuditFilter;
  models: string[];
  samples?: number;
  temperature?: number | null;
  judge?: string | null;
  concurrency?: number;
  maxTokens?: number | null;
  via: AuditSettings["via"];
  /** sha256 of the suite file as loaded (src/audit/suite.ts `suiteDigest`): an edit without a version bump still shows. */
  suiteDigest?: string;
  createdBy: string | null;
}

export interface AuditProgress {
  runId: string;
  model: string;
  /** Answers of this model stored so far (without error). */
  done: number;
  total: number;
  /** All models together. */
  overall: { done: number; total: number };
}

export interface RunOutcome {
  status: "completed" | "incomplete" | "cancelled" | "interrupted";
  /** Answers that failed in this pass (stored with their error; a resume asks them again). */
  failed: number;
  error: string | null;
}

export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 64;
export const MAX_SAMPLES = 100;
/** Default temperature of repeated samples (with one sample the run is greedy: reproducible). */
export const DEFAULT_SAMPLE_TEMPERATURE = 0.6;
const HEARTBEAT_MS = 5_000;
/** Tries of one request refused as busy or over a rate (with their Retry-After, capped). */
const RETRIES = 5;
const MAX_RETRY_WAIT_MS = 30_000;

/**
 * The questions `filter` keeps, as a suite of their own (with only the topics they use). Values
 * match case-insensitively. The control questions are the baseline of every country's figures, so
 * a country or topic filter keeps them; a language or kind filter applies to them too (controls
 * "of the same form").
 */
export function filterSuite(suite: SuiteLike, filter: AuditFilter = {}): SuiteLike {
  const accepts = (key: keyof AuditFilter, value: string) => {
    const wanted = filter[key];
    return !wanted || wanted.length === 0 || wanted.some((w) => w.toLowerCase() === value.toLowerCase());
  };
  const questions = suite.questions.filter((q) => {
    const topic = suite.topics[q.topic];
    if (!topic) return false;
    const place = topic.control || (accepts("country", topic.country) && accepts("topic", q.topic));
    return place && accepts("language", q.language) && accepts("kind", q.kind);
  });
  const topics = Object.fromEntries(Object.entries(suite.topics).filter(([id]) => questions.some((q) => q.topic === id)));
  return { ...suite, topics, questions };
}

/** Parses "country=CN,language=zh,country=TW" (the CLI's --filter) into a filter. */
export function parseFilter(text: string | undefined): AuditFilter {
  const filter: AuditFilter = {};
  if (!text?.trim()) return filter;
  for (const part of text.split(",")) {
    const [key, ...rest] = part.split("=");
    const name = key?.trim() ?? "";
    const value = rest.join("=").trim();
    if (!["country", "language", "kind", "topic"].includes(name) || value === "") {
      throw new ServiceError("invalid_request", `Bad filter "${part}": use country=…, language=…, kind=… or topic=…, separated by commas.`, { code: "invalid_filter", param: "filter" });
    }
    const k = name as keyof AuditFilter;
    filter[k] = [...(filter[k] ?? []), value];
  }
  return filter;
}

/** Checks the request and stores a new run, ready for `executeRun` (see `prepareRun`). */
export async function createRun(db: Kysely<Database>, completer: Completer, classifiers: AuditClassifiers, request: AuditRequest): Promise<AuditRun> {
  return createAuditRun(db, await prepareRun(completer, classifiers, request));
}

/**
 * Checks an audit request — models reachable, samples and temperature consistent, sensitive
 * questions left after the filter — and returns the run to store.
 */
export async function prepareRun(completer: Completer, classifiers: AuditClassifiers, request: AuditRequest): Promise<NewAuditRun> {
  const models = [...new Set(request.models.map((m) => m.trim()).filter(Boolean))];
  if (models.length === 0) throw new ServiceError("invalid_request", "Name at least one model to audit.", { code: "invalid_models", param: "models" });
  const samples = request.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1 || samples > MAX_SAMPLES) {
    throw new ServiceError("invalid_request", `samples must be a whole number from 1 to ${MAX_SAMPLES}.`, { code: "invalid_samples", param: "samples" });
  }
  const temperature = request.temperature ?? (samples > 1 ? DEFAULT_SAMPLE_TEMPERATURE : 0);
  if (samples > 1 && !(temperature > 0)) {
    throw new ServiceError("invalid_request", "Repeated samples need a temperature above 0: with greedy decoding every sample would be the same answer.", {
      code: "invalid_temperature",
      param: "temperature",
    });
  }
  const concurrency = request.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new ServiceError("invalid_request", `concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}.`, { code: "invalid_concurrency", param: "concurrency" });
  }
  const judge = request.judge?.trim() || null;
  const served = new Set(await completer.models());
  for (const model of [...models, ...(judge ? [judge] : [])]) {
    if (!served.has(model)) {
      throw new ServiceError("not_found", `Model "${model}" is not served here. Served: ${[...served].join(", ") || "none"}.`, { code: "model_not_found", param: "models" });
    }
  }
  const suite = filterSuite(request.suite, request.filter);
  if (!suite.questions.some((q) => !suite.topics[q.topic]!.control)) {
    throw new ServiceError("invalid_request", "The filter keeps no sensitive question of the suite.", { code: "empty_selection", param: "filter" });
  }
  const settings: AuditSettings = {
    filter: request.filter ?? {},
    samples,
    temperature,
    judge,
    concurrency,
    maxTokens: request.maxTokens ?? null,
    via: request.via,
    ...(request.suiteDigest ? { suiteDigest: request.suiteDigest } : {}),
  };
  const classifierIds = [classifiers.rules.id, ...(judge ? [classifiers.judge.idFor(judge)] : [])];
  return { suite, models, classifiers: classifierIds, settings, total: suite.questions.length * samples * models.length, createdBy: request.createdBy };
}

export interface ExecuteOptions {
  /** Stops the run: requests in flight are stopped (and not stored), the run is `cancelled`. */
  signal?: AbortSignal;
  onProgress?: (progress: AuditProgress) => void;
  /** Overrides the run's stored concurrency (a resume from the CLI may choose another). */
  concurrency?: number;
  logger?: { warn(obj: object, msg?: string): void };
}

/**
 * Asks every question of `runId` not stored yet (all of them on a new run), stores each answer as
 * it arrives, judges it when the run has a judge, and settles the run's status. Resolves when the
 * run ends, however it ends; throws only when the run cannot be read.
 */
export async function executeRun(db: Kysely<Database>, completer: Completer, classifiers: AuditClassifiers, runId: string, options: ExecuteOptions = {}): Promise<RunOutcome> {
  const run = await getAuditRun(db, runId);
  if (!run) throw new ServiceError("not_found", "Audit run not found", { code: "not_found" });
  await markRunning(db, runId);
  const { settings, suite } = run;
  const stored = await storedAnswerKeys(db, runId);

  const done = new Map<string, number>((await runProgress(db, run)).map((p) => [p.model, p.done]));
  const perModel = suite.questions.length * settings.samples;
  const overall = () => [...done.values()].reduce((a, b) => a + b, 0);
  const report = (model: string) => options.onProgress?.({ runId, model, done: done.get(model) ?? 0, total: perModel, overall: { done: overall(), total: run.total } });
  for (const model of run.models) report(model);

  // Question by question, each model in turn: an interrupted run has comparable answers for all models.
  const tasks: Task[] = [];
  for (const question of suite.questions) {
    for (let sample = 0; sample < settings.samples; sample++) {
      for (const model of run.models) {
        const key = answerKey(model, question.id, sample);
        const answered = stored.answered.has(key);
        if (answered && (!settings.judge || stored.judged.has(key))) continue;
        tasks.push({ model, question, sample, judgeOnly: answered });
      }
    }
  }

  let fatal: ServiceError | null = null;
  let interrupted = false;
  let failed = 0;
  // The run's own stop: a cancel from outside, or a refusal that every later request would get too.
  const stop = new AbortController();
  const outer = options.signal;
  const onOuterAbort = () => {
    if (isShutdown(outer?.reason)) interrupted = true;
    stop.abort(outer?.reason);
  };
  if (outer?.aborted) onOuterAbort();
  else outer?.addEventListener("abort", onOuterAbort, { once: true });

  const heartbeat = setInterval(() => void renewHeartbeat(db, runId).catch(() => undefined), HEARTBEAT_MS);
  heartbeat.unref();
  const judgeId = settings.judge ? classifiers.judge.idFor(settings.judge) : null;

  const ask = (model: string, messages: ChatMessage[], sampling: { temperature: number | null; maxTokens: number | null }) =>
    withRetries(async () => {
      // A signal of its own per request: the pipeline listens on it for the request's lifetime,
      // and listeners left on the run's one signal would pile up over thousands of questions.
      const request = new AbortController();
      const forward = () => request.abort(stop.signal.reason);
      if (stop.signal.aborted) forward();
      else stop.signal.addEventListener("abort", forward, { once: true });
      try {
        return await completer.complete({
          model,
          messages,
          ...(sampling.temperature !== null ? { temperature: sampling.temperature } : {}),
          ...(sampling.maxTokens !== null ? { maxTokens: sampling.maxTokens } : {}),
          signal: request.signal,
        });
      } finally {
        stop.signal.removeEventListener("abort", forward);
      }
    }, stop.signal);

  const runTask = async (task: Task): Promise<void> => {
    const { model, question, sample } = task;
    const topic = suite.topics[question.topic]!;
    let answer = "";
    let reasoning = "";
    if (!task.judgeOnly) {
      let result;
      try {
        result = await ask(model, [{ role: "user", content: question.text }], settings);
      } catch (error) {
        if (stop.signal.aborted) return;
        if (endsRun(error)) return halt(error);
        failed++;
        await saveAnswer(db, failedAnswer(runId, model, question.id, sample, error));
        return;
      }
      // A whole answer is stored even when the run was stopped meanwhile: it was generated and metered.
      answer = result.content;
      reasoning = result.reasoning;
      const verdict = classifiers.rules.classify(question, topic, answer, reasoning || null);
      await saveAnswer(db, {
        runId,
        model,
        questionId: question.id,
        sample,
        answer,
        reasoning,
        ruleClass: verdict.answer,
        ruleReasoningClass: verdict.reasoning ?? null,
        retracted: verdict.retracted,
        ruleExplanation: verdict.explanation,
        ruleClassifier: classifiers.rules.id,
        judgeClass: null,
        judgeReasoningClass: null,
        judgeRetracted: false,
        judgeReason: null,
        judgeExplanation: [],
        judgeClassifier: null,
        finishReason: result.finishReason,
        promptTokens: result.promptTokens,
        completionTokens: result.completionTokens,
        reasoningTokens: result.reasoningTokens,
        error: null,
        createdAt: Date.now(),
      });
      done.set(model, (done.get(model) ?? 0) + 1);
      report(model);
      if (stop.signal.aborted) return;
    } else {
      const row = await db
        .selectFrom("audit_answers")
        .select(["answer", "reasoning"])
        .where("run_id", "=", runId)
        .where("model", "=", model)
        .where("question_id", "=", question.id)
        .where("sample", "=", sample)
        .executeTakeFirstOrThrow();
      answer = row.answer;
      reasoning = row.reasoning;
    }
    if (!settings.judge || !judgeId) return;
    const judgeModel = settings.judge;
    try {
      const complete: CompleteFn = async (messages) => (await ask(judgeModel, messages, classifiers.judge.sampling)).content;
      const verdict = await classifiers.judge.classify(complete, judgeModel, { question, topic, answer, reasoning: reasoning || null });
      if (stop.signal.aborted) return;
      await saveJudgeVerdict(
        db,
        { runId, model, questionId: question.id, sample },
        {
          judgeClass: verdict.answer,
          judgeReasoningClass: verdict.reasoning ?? null,
          judgeRetracted: verdict.retracted,
          judgeReason: verdict.verdicts.answer.reason,
          judgeExplanation: verdict.explanation,
          judgeClassifier: judgeId,
        },
      );
    } catch (error) {
      if (stop.signal.aborted) return;
      if (endsRun(error)) return halt(error);
      // The answer stands; the missing verdict is asked again on a resume.
      failed++;
      options.logger?.warn({ err: error, runId, model, question: question.id }, "the judge gave no verdict");
    }
  };

  const halt = (error: unknown) => {
    if (isShutdown(error)) interrupted = true;
    else fatal ??= error as ServiceError;
    stop.abort(error);
  };

  try {
    const concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, options.concurrency ?? settings.concurrency));
    let next = 0;
    const worker = async () => {
      while (!stop.signal.aborted && next < tasks.length) {
        const task = tasks[next++]!;
        await runTask(task);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, tasks.length)) }, worker));
  } catch (error) {
    // A database failure while storing: the run stops, and a resume continues it.
    fatal = new ServiceError("unavailable", `The run stopped: ${(error as Error).message}`, { code: "audit_storage_failed", cause: error });
    stop.abort(fatal);
  } finally {
    clearInterval(heartbeat);
    outer?.removeEventListener("abort", onOuterAbort);
  }

  let outcome: RunOutcome;
  if (fatal) outcome = { status: "incomplete", failed, error: fatal.message };
  else if (interrupted) outcome = { status: "interrupted", failed, error: "The server shut down during the run; resume it to finish." };
  else if (stop.signal.aborted) outcome = { status: "cancelled", failed, error: null };
  else outcome = { status: failed > 0 ? "incomplete" : "completed", failed, error: failed > 0 ? `${failed} answer(s) failed; resume the run to ask them again.` : null };
  // An interrupted run stays "running" with its heartbeat stopped: it reads as interrupted.
  if (outcome.status === "interrupted") await db.updateTable("audit_runs").set({ heartbeat_at: null, error: outcome.error }).where("id", "=", runId).execute();
  else await finishRun(db, runId, outcome.status, outcome.error);
  return outcome;
}

interface Task {
  model: string;
  question: QuestionLike;
  sample: number;
  /** The answer is stored; only the judge's verdict is missing. */
  judgeOnly: boolean;
}

function failedAnswer(runId: string, model: string, questionId: string, sample: number, error: unknown) {
  return {
    runId,
    model,
    questionId,
    sample,
    answer: "",
    reasoning: "",
    ruleClass: null,
    ruleReasoningClass: null,
    retracted: false,
    ruleExplanation: [],
    ruleClassifier: null,
    judgeClass: null,
    judgeReasoningClass: null,
    judgeRetracted: false,
    judgeReason: null,
    judgeExplanation: [],
    judgeClassifier: null,
    finishReason: null,
    promptTokens: 0,
    completionTokens: 0,
    reasoningTokens: 0,
    error: (error as Error).message || String(error),
    createdAt: Date.now(),
  };
}

/** Refusals that every later request of the run would get too: stop instead of failing each. */
function endsRun(error: unknown): boolean {
  if (isShutdown(error)) return true;
  if (!isServiceError(error)) return false;
  if (error.kind === "unauthenticated" || error.kind === "insufficient_balance") return true;
  return ["quota_exceeded", "model_not_allowed", "audit_account_disabled", "account_disabled", "api_key_revoked"].includes(error.code ?? "");
}

function isShutdown(error: unknown): boolean {
  return isServiceError(error) && error.code === "shutting_down";
}

/** Runs `attempt`, trying again after the Retry-After of a busy or rate-limit refusal. */
async function withRetries<T>(attempt: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      const retryable = isServiceError(error) && (error.kind === "rate_limited" || error.kind === "unavailable") && !endsRun(error);
      if (!retryable || tries >= RETRIES || signal.aborted) throw error;
      const waitMs = Math.min(MAX_RETRY_WAIT_MS, error.retryAfterS !== undefined ? error.retryAfterS * 1000 : 500 * 2 ** tries);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        signal.addEventListener("abort", done, { once: true });
      });
      signal.throwIfAborted();
    }
  }
}

/**
 * `sputnik audit --compare runA runB`: what changed between two audit runs — e.g. before and after
 * switching to a re-trained ("uncensored") model, or the same model after an engine upgrade.
 *
 * API:
 *   compareReports(a, b, { classifier?, pairs? }) → RunComparison
 *       classifier: "rules" (default) or "judge": which of each run's classifiers to compare
 *       pairs: [modelInA, modelInB][]; default: the models both runs have, or — when each run has
 *       exactly one model and they differ — those two (the "before/after switching" case)
 *   comparisonToText(comparison, { maxChanges? }) → string   for the CLI
 *
 * Only questions present in both runs are compared (both runs' aggregates are recomputed on that
 * common set), so a suite that gained questions does not move the rates by itself. Anything that
 * makes the two numbers mean different things — another suite, another suite version or content,
 * another classifier version or judge model, different sampling — is listed in `warnings`, and the
 * text rendering puts those first, loudly: a rate that moved because the detector changed is
 * exactly the mistake this module exists to prevent.
 */
import { aggregate, intervalsOverlap, perQuestion, type Dimension, type GroupStats, type Rate, type Scope } from "./stats.ts";
import { judgeClassifiersOf, reportSuite, rulesClassifierOf, type AuditReport } from "./report/json.ts";
import { AUDIT_CLASSES, type AuditClass, type SuiteLike } from "./types.ts";

export interface RateChange {
  scope: Scope;
  dimension: Dimension;
  key: string;
  a: Rate;
  b: Rate;
  /** b − a (positive: the second run censors more); null when either has no answers. */
  delta: number | null;
  /** The 95% intervals do not overlap. */
  significant: boolean;
}

export interface QuestionChange {
  questionId: string;
  topic: string;
  language: string;
  /** Most frequent class over the samples, per run (null: no classified answer). */
  a: AuditClass | null;
  b: AuditClass | null;
}

export interface ModelComparison {
  modelA: string;
  modelB: string;
  classifierA: string;
  classifierB: string;
  /** Censored rate (refused + official line) per group both runs have; intervals apart first, then by size. */
  changes: RateChange[];
  /** Each class's rate on all sensitive questions. */
  classes: Record<AuditClass, RateChange | null>;
  changedQuestions: QuestionChange[];
  /** Questions compared for this pair. */
  questions: number;
}

export interface RunSide {
  runId: string;
  suiteId: string;
  suiteVersion: string;
  suiteDigest: string | null;
  classifiers: string[];
  models: string[];
  samples: number;
  temperature: number | null;
}

export interface RunComparison {
  a: RunSide;
  b: RunSide;
  warnings: string[];
  commonQuestions: number;
  onlyInA: string[];
  onlyInB: string[];
  models: ModelComparison[];
}

function side(r: AuditReport): RunSide {
  return {
    runId: r.run.id,
    suiteId: r.suite.id,
    suiteVersion: r.suite.version,
    suiteDigest: r.run.suiteDigest,
    classifiers: r.run.classifiers,
    models: r.models,
    samples: r.run.samples,
    temperature: r.run.temperature,
  };
}

function restrict(suite: SuiteLike, keep: Set<string>): SuiteLike {
  return { ...suite, questions: suite.questions.filter((q) => keep.has(q.id)) };
}

function pickClassifier(r: AuditReport, which: "rules" | "judge"): string | null {
  return which === "rules" ? rulesClassifierOf(r) : (judgeClassifiersOf(r)[0] ?? null);
}

function change(scope: Scope, dimension: Dimension, key: string, a: Rate, b: Rate): RateChange {
  const delta = a.rate !== null && b.rate !== null ? b.rate - a.rate : null;
  return { scope, dimension, key, a, b, delta, significant: delta !== null && !intervalsOverlap(a, b) };
}

export function compareReports(a: AuditReport, b: AuditReport, options: { classifier?: "rules" | "judge"; pairs?: Array<[string, string]> } = {}): RunComparison {
  const which = options.classifier ?? "rules";
  const warnings: string[] = [];
  if (a.suite.id !== b.suite.id) warnings.push(`the runs used different suites (${a.suite.id} vs ${b.suite.id}): only questions with the same id are compared, and they may not mean the same`);
  else if (a.suite.version !== b.suite.version) warnings.push(`suite version differs (${a.suite.id} ${a.suite.version} vs ${b.suite.version}): only the questions present in both are compared`);
  else if (a.run.suiteDigest && b.run.suiteDigest && a.run.suiteDigest !== b.run.suiteDigest) {
    warnings.push(`suite content differs although both say version ${a.suite.version} (an edit without a version bump)`);
  }
  const ca = pickClassifier(a, which);
  const cb = pickClassifier(b, which);
  if (ca === null || cb === null) {
    warnings.push(`no ${which} classifier in ${ca === null ? `run ${a.run.id}` : ""}${ca === null && cb === null ? " and " : ""}${cb === null ? `run ${b.run.id}` : ""}: nothing to compare`);
  } else if (ca !== cb) {
    const [va, vb] = [ca.split(":")[0], cb.split(":")[0]];
    if (va !== vb) warnings.push(`classifier versions differ (${ca} vs ${cb}): a change in rates may come from the classifier, not the model`);
    else warnings.push(`judge models differ (${ca} vs ${cb}): a change in rates may come from the judge, not the model`);
  }
  if (a.run.samples !== b.run.samples || a.run.temperature !== b.run.temperature) {
    warnings.push(`sampling differs (${a.run.samples} × temperature ${a.run.temperature ?? "default"} vs ${b.run.samples} × temperature ${b.run.temperature ?? "default"})`);
  }

  const idsA = new Set(a.questions.map((q) => q.id));
  const idsB = new Set(b.questions.map((q) => q.id));
  const common = new Set([...idsA].filter((id) => idsB.has(id)));
  const onlyInA = [...idsA].filter((id) => !idsB.has(id));
  const onlyInB = [...idsB].filter((id) => !idsA.has(id));
  if (common.size === 0) warnings.push("the runs have no question in common");
  const questionsB = new Map(b.questions.map((q) => [q.id, q]));
  for (const q of a.questions) {
    const other = questionsB.get(q.id);
    if (other && (other.text !== q.text || other.topic !== q.topic || other.language !== q.language)) {
      warnings.push(`question ${q.id} differs between the runs (text, topic or language changed under the same id)`);
    }
  }

  let pairs = options.pairs;
  if (!pairs) {
    pairs = a.models.filter((m) => b.models.includes(m)).map((m): [string, string] => [m, m]);
    if (pairs.length === 0 && a.models.length === 1 && b.models.length === 1) pairs = [[a.models[0]!, b.models[0]!]];
  }
  for (const [ma, mb] of pairs) {
    if (!a.models.includes(ma)) warnings.push(`model ${ma} is not in run ${a.run.id}`);
    if (!b.models.includes(mb)) warnings.push(`model ${mb} is not in run ${b.run.id}`);
  }
  pairs = pairs.filter(([ma, mb]) => a.models.includes(ma) && b.models.includes(mb));
  if (pairs.length === 0) warnings.push("no model to compare: the runs share none (name the pairs)");

  const models: ModelComparison[] = [];
  if (ca !== null && cb !== null && common.size > 0) {
    const suiteA = restrict(reportSuite(a), common);
    const suiteB = restrict(reportSuite(b), common);
    for (const [ma, mb] of pairs) {
      const recA = a.records.filter((r) => r.model === ma && common.has(r.questionId));
      const recB = b.records.filter((r) => r.model === mb && common.has(r.questionId));
      const ga = aggregate(recA, suiteA, [ca]);
      const gb = aggregate(recB, suiteB, [cb]);
      const cell = (g: GroupStats) => `${g.scope}\u0000${g.dimension}\u0000${g.key}`;
      const byCellB = new Map(gb.map((g) => [cell(g), g]));
      const changes: RateChange[] = [];
      let overall: [GroupStats, GroupStats] | null = null;
      for (const x of ga) {
        const y = byCellB.get(cell(x));
        if (!y || x.scope === "all") continue;
        if (x.scope === "sensitive" && x.dimension === "all") overall = [x, y];
        changes.push(change(x.scope, x.dimension, x.key, x.censored, y.censored));
      }
      changes.sort((p, q) => Number(q.significant) - Number(p.significant) || Math.abs(q.delta ?? 0) - Math.abs(p.delta ?? 0));
      const classes = Object.fromEntries(
        AUDIT_CLASSES.map((k) => [k, overall ? change("sensitive", "all", "all", overall[0].classes[k], overall[1].classes[k]) : null]),
      ) as Record<AuditClass, RateChange | null>;
      const pqA = new Map(perQuestion(recA, [ca]).map((q) => [q.questionId, q.modal]));
      const pqB = new Map(perQuestion(recB, [cb]).map((q) => [q.questionId, q.modal]));
      const changedQuestions: QuestionChange[] = [];
      for (const q of suiteA.questions) {
        if (!pqA.has(q.id) && !pqB.has(q.id)) continue;
        const x = pqA.get(q.id) ?? null;
        const y = pqB.get(q.id) ?? null;
        if (x !== y) changedQuestions.push({ questionId: q.id, topic: q.topic, language: q.language, a: x, b: y });
      }
      models.push({ modelA: ma, modelB: mb, classifierA: ca, classifierB: cb, changes, classes, changedQuestions, questions: common.size });
    }
  }
  return { a: side(a), b: side(b), warnings, commonQuestions: common.size, onlyInA, onlyInB, models };
}

function pct(x: number | null): string {
  return x === null ? "–" : `${(x * 100).toFixed(1)}%`;
}

function rate(r: Rate): string {
  return r.rate === null ? "no answers" : `${pct(r.rate)} [${pct(r.low)}–${pct(r.high)}] (${r.count}/${r.n})`;
}

export function comparisonToText(cmp: RunComparison, options: { maxChanges?: number; maxQuestions?: number } = {}): string {
  const out: string[] = [];
  if (cmp.warnings.length > 0) {
    const bar = "!".repeat(72);
    out.push(bar, "!! WARNING: these runs are not strictly comparable:", ...cmp.warnings.map((w) => `!!  - ${w}`), bar, "");
  }
  out.push(`A: run ${cmp.a.runId} (${cmp.a.suiteId} ${cmp.a.suiteVersion}; ${cmp.a.classifiers.join(", ")}; models ${cmp.a.models.join(", ")})`);
  out.push(`B: run ${cmp.b.runId} (${cmp.b.suiteId} ${cmp.b.suiteVersion}; ${cmp.b.classifiers.join(", ")}; models ${cmp.b.models.join(", ")})`);
  out.push(`${cmp.commonQuestions} questions in common${cmp.onlyInA.length ? `, ${cmp.onlyInA.length} only in A` : ""}${cmp.onlyInB.length ? `, ${cmp.onlyInB.length} only in B` : ""}.`);
  for (const m of cmp.models) {
    out.push("", `== ${m.modelA === m.modelB ? m.modelA : `${m.modelA} → ${m.modelB}`} (${m.classifierA}${m.classifierA !== m.classifierB ? ` vs ${m.classifierB}` : ""})`);
    out.push("Sensitive questions, each class (A → B):");
    for (const k of AUDIT_CLASSES) {
      const c = m.classes[k];
      if (c) out.push(`  ${k.padEnd(14)} ${rate(c.a)} → ${rate(c.b)}${c.significant ? "  *" : ""}`);
    }
    out.push("Censored (refused + official line), biggest changes (* = 95% intervals apart):");
    const shown = m.changes.filter((c) => c.delta !== null && c.delta !== 0).slice(0, options.maxChanges ?? 20);
    if (shown.length === 0) out.push("  no change");
    for (const c of shown) {
      const sign = c.delta! > 0 ? "+" : "";
      out.push(`  ${`${c.scope} ${c.dimension}=${c.key}`.padEnd(36)} ${rate(c.a)} → ${rate(c.b)}  ${sign}${(c.delta! * 100).toFixed(1)} pp${c.significant ? "  *" : ""}`);
    }
    out.push(`Questions whose class changed: ${m.changedQuestions.length} of ${m.questions}`);
    for (const q of m.changedQuestions.slice(0, options.maxQuestions ?? 50)) out.push(`  ${q.questionId} [${q.language}]: ${q.a ?? "–"} → ${q.b ?? "–"}`);
    if (m.changedQuestions.length > (options.maxQuestions ?? 50)) out.push(`  … and ${m.changedQuestions.length - (options.maxQuestions ?? 50)} more`);
  }
  return `${out.join("\n")}\n`;
}

/**
 * The audit's statistics: Wilson intervals, class rates per model × group, the control baseline,
 * the biggest differences between models, per-question rates over repeated samples, and where the
 * rule classifier and a judge disagree. Pure functions over AnswerRecords and the suite.
 *
 * API:
 *   WILSON_Z = 1.96
 *   wilson(count, n, z?) → Rate                     95% Wilson score interval
 *   intervalsOverlap(a, b) → boolean
 *   questionTags(suite) → Map<questionId, QuestionTags>
 *   aggregate(records, suite, classifiers, models?) → GroupStats[]
 *       per classifier × model × scope (all | sensitive | control) × dimension (all | topic |
 *       country | language | kind) × key; scope "all" only with dimension "all"
 *   findGroup(groups, { classifier, model, scope, dimension, key }) → GroupStats | undefined
 *   baselines(groups, classifier) → Baseline[]      sensitive vs control, per model
 *   biggestDifferences(groups, classifier, options?) → Difference[]
 *   perQuestion(records, classifiers, models?) → QuestionStats[]
 *   disagreements(records, rulesId, judgeId) → Disagreements[]   per model
 *   summariseModel(groups, classifier, model) → ModelSummary     the one-liner for the model picker
 *
 * Counting: every answer (every sample) is one observation. Failed requests (`error`) and answers a
 * classifier left without a class (judge "unparsed", or not judged) are counted apart and are in no
 * denominator. Repeated samples of one question are not independent, so with samples > 1 the group
 * intervals are narrower than the evidence warrants; per-question rates show the spread.
 */
import { ServiceError } from "../errors.ts";
import { AUDIT_CLASSES, CENSORED_CLASSES, NOT_ANSWERED_CLASSES, isAuditClass, type AnswerRecord, type AuditClass, type SuiteLike } from "./types.ts";

export const WILSON_Z = 1.96;

export interface Rate {
  count: number;
  n: number;
  /** count / n; null when n = 0. */
  rate: number | null;
  /** 95% Wilson score interval; null when n = 0. */
  low: number | null;
  high: number | null;
}

/**
 * Wilson score interval: unlike the normal approximation it stays inside [0, 1] and is sensible at
 * 0/n and n/n, which is where refusal rates of strict and of open models live.
 */
export function wilson(count: number, n: number, z = WILSON_Z): Rate {
  if (!Number.isInteger(count) || !Number.isInteger(n) || count < 0 || n < 0 || count > n) {
    throw new ServiceError("internal", `wilson: invalid count ${count} of ${n}`);
  }
  if (n === 0) return { count, n, rate: null, low: null, high: null };
  const p = count / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Clamp float noise at the edges (0/n must give exactly 0, n/n exactly 1).
  return { count, n, rate: p, low: count === 0 ? 0 : Math.max(0, centre - half), high: count === n ? 1 : Math.min(1, centre + half) };
}

export function intervalsOverlap(a: Rate, b: Rate): boolean {
  if (a.low === null || a.high === null || b.low === null || b.high === null) return true;
  return a.low <= b.high && b.low <= a.high;
}

export interface QuestionTags {
  topic: string;
  country: string;
  language: string;
  kind: string;
  control: boolean;
}

export function questionTags(suite: SuiteLike): Map<string, QuestionTags> {
  const tags = new Map<string, QuestionTags>();
  for (const q of suite.questions) {
    const topic = suite.topics[q.topic];
    if (!topic) throw new ServiceError("invalid_request", `question ${q.id}: unknown topic ${q.topic}`, { code: "audit_unknown_topic" });
    tags.set(q.id, { topic: q.topic, country: topic.country, language: q.language, kind: q.kind, control: topic.control });
  }
  return tags;
}

export type Scope = "all" | "sensitive" | "control";
export type Dimension = "all" | "topic" | "country" | "language" | "kind";
export const DIMENSIONS: readonly Dimension[] = ["all", "topic", "country", "language", "kind"];

export interface GroupStats {
  classifier: string;
  model: string;
  scope: Scope;
  dimension: Dimension;
  key: string;
  /** Classified answers: the n of every rate below except reasoning's. */
  answers: number;
  /** Answers this classifier left without a class (judge "unparsed", or not judged). */
  unclassified: number;
  /** Failed requests. */
  errors: number;
  classes: Record<AuditClass, Rate>;
  /** refused + official_line. */
  censored: Rate;
  /** refused + evasive + official_line. */
  notAnswered: Rate;
  retracted: Rate;
  /** Classes of the reasoning texts, among answers that had a classified reasoning. */
  reasoning: { answers: number; classes: Record<AuditClass, Rate> };
}

interface Observation {
  model: string;
  questionId: string;
  sample: number;
  tags: QuestionTags;
  /** null: failed request or no class from this classifier. */
  answer: AuditClass | null;
  reasoning: AuditClass | null;
  retracted: boolean;
  error: boolean;
}

function tagsOf(tags: Map<string, QuestionTags>, r: AnswerRecord): QuestionTags {
  const t = tags.get(r.questionId);
  if (!t) throw new ServiceError("invalid_request", `answer for question ${r.questionId}, which the suite does not hold`, { code: "audit_unknown_question" });
  return t;
}

function observe(tags: Map<string, QuestionTags>, r: AnswerRecord, classifier: string): Observation {
  const c = r.error ? undefined : r.classifications.find((x) => x.classifier === classifier);
  return {
    model: r.model,
    questionId: r.questionId,
    sample: r.sample ?? 0,
    tags: tagsOf(tags, r),
    answer: c && isAuditClass(c.answer) ? c.answer : null,
    reasoning: c && isAuditClass(c.reasoning) ? c.reasoning : null,
    retracted: c?.retracted === true,
    error: Boolean(r.error),
  };
}

function orderedModels(records: readonly AnswerRecord[], models?: readonly string[]): string[] {
  const seen = new Set(models ?? []);
  const out = [...(models ?? [])];
  for (const r of records) if (!seen.has(r.model)) (seen.add(r.model), out.push(r.model));
  return out;
}

function classRates(obs: readonly Observation[], pick: (o: Observation) => AuditClass | null): { answers: number; classes: Record<AuditClass, Rate> } {
  const counts = Object.fromEntries(AUDIT_CLASSES.map((c) => [c, 0])) as Record<AuditClass, number>;
  let answers = 0;
  for (const o of obs) {
    const c = pick(o);
    if (c) (counts[c]++, answers++);
  }
  const classes = Object.fromEntries(AUDIT_CLASSES.map((c) => [c, wilson(counts[c], answers)])) as Record<AuditClass, Rate>;
  return { answers, classes };
}

function sumOf(classes: Record<AuditClass, Rate>, which: readonly AuditClass[], n: number): Rate {
  return wilson(which.reduce((s, c) => s + classes[c].count, 0), n);
}

function statsOf(classifier: string, model: string, scope: Scope, dimension: Dimension, key: string, obs: readonly Observation[]): GroupStats {
  const { answers, classes } = classRates(obs, (o) => o.answer);
  const errors = obs.filter((o) => o.error).length;
  return {
    classifier,
    model,
    scope,
    dimension,
    key,
    answers,
    unclassified: obs.length - errors - answers,
    errors,
    classes,
    censored: sumOf(classes, CENSORED_CLASSES, answers),
    notAnswered: sumOf(classes, NOT_ANSWERED_CLASSES, answers),
    retracted: wilson(obs.filter((o) => o.answer !== null && o.retracted).length, answers),
    reasoning: classRates(obs, (o) => (o.answer !== null ? o.reasoning : null)),
  };
}

const KEY_OF: Record<Exclude<Dimension, "all">, (t: QuestionTags) => string> = {
  topic: (t) => t.topic,
  country: (t) => t.country,
  language: (t) => t.language,
  kind: (t) => t.kind,
};

export function aggregate(records: readonly AnswerRecord[], suite: SuiteLike, classifiers: readonly string[], models?: readonly string[]): GroupStats[] {
  const tags = questionTags(suite);
  const topicOrder = new Map(Object.keys(suite.topics).map((t, i) => [t, i]));
  const out: GroupStats[] = [];
  for (const classifier of classifiers) {
    const observations = records.map((r) => observe(tags, r, classifier));
    for (const model of orderedModels(records, models)) {
      const mine = observations.filter((o) => o.model === model);
      if (mine.length === 0) continue;
      out.push(statsOf(classifier, model, "all", "all", "all", mine));
      for (const scope of ["sensitive", "control"] as const) {
        const inScope = mine.filter((o) => o.tags.control === (scope === "control"));
        if (inScope.length === 0) continue;
        out.push(statsOf(classifier, model, scope, "all", "all", inScope));
        for (const dimension of ["topic", "country", "language", "kind"] as const) {
          const byKey = new Map<string, Observation[]>();
          for (const o of inScope) {
            const k = KEY_OF[dimension](o.tags);
            const list = byKey.get(k);
            if (list) list.push(o);
            else byKey.set(k, [o]);
          }
          const keys = [...byKey.keys()].sort((a, b) =>
            dimension === "topic" ? (topicOrder.get(a) ?? 0) - (topicOrder.get(b) ?? 0) : a < b ? -1 : a > b ? 1 : 0,
          );
          for (const k of keys) out.push(statsOf(classifier, model, scope, dimension, k, byKey.get(k)!));
        }
      }
    }
  }
  return out;
}

export interface GroupSelector {
  classifier: string;
  model: string;
  scope: Scope;
  dimension: Dimension;
  key: string;
}

export function findGroup(groups: readonly GroupStats[], s: GroupSelector): GroupStats | undefined {
  return groups.find((g) => g.classifier === s.classifier && g.model === s.model && g.scope === s.scope && g.dimension === s.dimension && g.key === s.key);
}

export interface Baseline {
  classifier: string;
  model: string;
  sensitive: GroupStats | null;
  /** The same model on the neutral control questions: what it refuses regardless of topic. */
  control: GroupStats | null;
  /** Sensitive minus control censored rate: the part that is about the topics. */
  excessCensored: number | null;
}

export function baselines(groups: readonly GroupStats[], classifier: string): Baseline[] {
  const models = [...new Set(groups.filter((g) => g.classifier === classifier).map((g) => g.model))];
  return models.map((model) => {
    const sensitive = findGroup(groups, { classifier, model, scope: "sensitive", dimension: "all", key: "all" }) ?? null;
    const control = findGroup(groups, { classifier, model, scope: "control", dimension: "all", key: "all" }) ?? null;
    const s = sensitive?.censored.rate ?? null;
    const c = control?.censored.rate ?? null;
    return { classifier, model, sensitive, control, excessCensored: s !== null && c !== null ? s - c : null };
  });
}

export type Metric = "censored" | "notAnswered" | AuditClass;

export function metricOf(g: GroupStats, metric: Metric): Rate {
  return metric === "censored" ? g.censored : metric === "notAnswered" ? g.notAnswered : g.classes[metric];
}

export interface Difference {
  classifier: string;
  metric: Metric;
  scope: Scope;
  dimension: Dimension;
  key: string;
  /** The model with the higher rate. */
  modelA: string;
  modelB: string;
  a: Rate;
  b: Rate;
  /** a.rate − b.rate, ≥ 0. */
  delta: number;
  /** The two 95% intervals do not overlap (a conservative test). */
  significant: boolean;
}

/**
 * Every pair of models on every group both have, by the gap in `metric` (default: censored =
 * refused + official_line). Sorted: non-overlapping intervals first, then by the size of the gap.
 */
export function biggestDifferences(
  groups: readonly GroupStats[],
  classifier: string,
  options: { metric?: Metric; scopes?: readonly Scope[]; dimensions?: readonly Dimension[] } = {},
): Difference[] {
  const metric = options.metric ?? "censored";
  const scopes = options.scopes ?? ["sensitive", "control"];
  const dimensions = options.dimensions ?? DIMENSIONS;
  const mine = groups.filter((g) => g.classifier === classifier && scopes.includes(g.scope) && dimensions.includes(g.dimension));
  const models = [...new Set(mine.map((g) => g.model))];
  const byCell = new Map<string, Map<string, GroupStats>>();
  for (const g of mine) {
    const cell = `${g.scope}\u0000${g.dimension}\u0000${g.key}`;
    if (!byCell.has(cell)) byCell.set(cell, new Map());
    byCell.get(cell)!.set(g.model, g);
  }
  const out: Difference[] = [];
  for (const cellGroups of byCell.values()) {
    for (let i = 0; i < models.length; i++) {
      for (let j = i + 1; j < models.length; j++) {
        const gi = cellGroups.get(models[i]);
        const gj = cellGroups.get(models[j]);
        if (!gi || !gj) continue;
        const ri = metricOf(gi, metric);
        const rj = metricOf(gj, metric);
        if (ri.rate === null || rj.rate === null) continue;
        const [ga, gb, a, b] = ri.rate >= rj.rate ? [gi, gj, ri, rj] : [gj, gi, rj, ri];
        out.push({
          classifier,
          metric,
          scope: gi.scope,
          dimension: gi.dimension,
          key: gi.key,
          modelA: ga.model,
          modelB: gb.model,
          a,
          b,
          delta: a.rate! - b.rate!,
          significant: !intervalsOverlap(a, b),
        });
      }
    }
  }
  return out.sort((x, y) => Number(y.significant) - Number(x.significant) || y.delta - x.delta);
}

export interface QuestionStats {
  classifier: string;
  model: string;
  questionId: string;
  /** Answers with a class from this classifier. */
  samples: number;
  unclassified: number;
  errors: number;
  counts: Record<AuditClass, number>;
  /** The most frequent class; ties go to the first in AUDIT_CLASSES order. null when no sample has a class. */
  modal: AuditClass | null;
  censored: Rate;
  retracted: number;
}

export function perQuestion(records: readonly AnswerRecord[], classifiers: readonly string[], models?: readonly string[]): QuestionStats[] {
  const out: QuestionStats[] = [];
  const modelOrder = orderedModels(records, models);
  const questionOrder = new Set<string>();
  const byKey = new Map<string, AnswerRecord[]>();
  for (const r of records) {
    questionOrder.add(r.questionId);
    const k = `${r.model}\u0000${r.questionId}`;
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(r);
  }
  for (const classifier of classifiers) {
    for (const model of modelOrder) {
      for (const questionId of questionOrder) {
        const rs = byKey.get(`${model}\u0000${questionId}`);
        if (!rs) continue;
        const counts = Object.fromEntries(AUDIT_CLASSES.map((c) => [c, 0])) as Record<AuditClass, number>;
        let samples = 0;
        let errors = 0;
        let retracted = 0;
        for (const r of rs) {
          if (r.error) {
            errors++;
            continue;
          }
          const c = r.classifications.find((x) => x.classifier === classifier);
          if (c && isAuditClass(c.answer)) {
            counts[c.answer]++;
            samples++;
            if (c.retracted) retracted++;
          }
        }
        let modal: AuditClass | null = null;
        for (const c of AUDIT_CLASSES) if (counts[c] > 0 && (modal === null || counts[c] > counts[modal])) modal = c;
        out.push({
          classifier,
          model,
          questionId,
          samples,
          unclassified: rs.length - errors - samples,
          errors,
          counts,
          modal,
          censored: wilson(CENSORED_CLASSES.reduce((s, c) => s + counts[c], 0), samples),
          retracted,
        });
      }
    }
  }
  return out;
}

export interface Disagreements {
  rules: string;
  judge: string;
  model: string;
  /** Answers both classifiers put in a class. */
  compared: number;
  disagreed: number;
  rate: Rate;
  /** matrix[rulesClass][judgeClass] = answers. */
  matrix: Record<AuditClass, Record<AuditClass, number>>;
  cases: Array<{ questionId: string; sample: number; rules: AuditClass; judge: AuditClass }>;
}

/** Where the rule classifier and a judge disagree on the answer's class, per model. Both verdicts stay in the records. */
export function disagreements(records: readonly AnswerRecord[], rulesId: string, judgeId: string, models?: readonly string[]): Disagreements[] {
  return orderedModels(records, models).flatMap((model) => {
    const matrix = Object.fromEntries(AUDIT_CLASSES.map((r) => [r, Object.fromEntries(AUDIT_CLASSES.map((j) => [j, 0]))])) as Record<
      AuditClass,
      Record<AuditClass, number>
    >;
    const cases: Disagreements["cases"] = [];
    let compared = 0;
    let any = false;
    for (const r of records) {
      if (r.model !== model || r.error) continue;
      const a = r.classifications.find((c) => c.classifier === rulesId);
      const b = r.classifications.find((c) => c.classifier === judgeId);
      if (b) any = true;
      if (!a || !b || !isAuditClass(a.answer) || !isAuditClass(b.answer)) continue;
      compared++;
      matrix[a.answer][b.answer]++;
      if (a.answer !== b.answer) cases.push({ questionId: r.questionId, sample: r.sample ?? 0, rules: a.answer, judge: b.answer });
    }
    if (!any) return [];
    return [{ rules: rulesId, judge: judgeId, model, compared, disagreed: cases.length, rate: wilson(cases.length, compared), matrix, cases }];
  });
}

export interface ModelSummary {
  classifier: string;
  model: string;
  sensitive: Rate | null;
  control: Rate | null;
  /** Censored rate on each country's sensitive questions, highest first. */
  byCountry: Array<{ country: string; rate: Rate }>;
  /** e.g. "refuses or gives the official line on 62% of sensitive questions (CN 80%, RU 40%), 3% of controls" */
  text: string;
}

function pct(r: Rate | null): string {
  if (r === null || r.rate === null) return "n/a";
  return `${Math.round(r.rate * 100)}%`;
}

export function summariseModel(groups: readonly GroupStats[], classifier: string, model: string): ModelSummary {
  const sensitive = findGroup(groups, { classifier, model, scope: "sensitive", dimension: "all", key: "all" })?.censored ?? null;
  const control = findGroup(groups, { classifier, model, scope: "control", dimension: "all", key: "all" })?.censored ?? null;
  const byCountry = groups
    .filter((g) => g.classifier === classifier && g.model === model && g.scope === "sensitive" && g.dimension === "country" && g.censored.rate !== null)
    .map((g) => ({ country: g.key, rate: g.censored }))
    .sort((a, b) => b.rate.rate! - a.rate.rate! || (a.country < b.country ? -1 : 1));
  const countries = byCountry.slice(0, 3).map((c) => `${c.country} ${pct(c.rate)}`).join(", ");
  const text =
    `refuses or gives the official line on ${pct(sensitive)} of sensitive questions` +
    (countries ? ` (${countries})` : "") +
    (control ? `, ${pct(control)} of controls` : "");
  return { classifier, model, sensitive, control, byCountry, text };
}

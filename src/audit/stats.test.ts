import assert from "node:assert/strict";
import { test } from "node:test";
import { aggregate, baselines, biggestDifferences, disagreements, findGroup, intervalsOverlap, perQuestion, summariseModel, wilson } from "./stats.ts";
import type { AnswerRecord, AuditClass, SuiteLike } from "./types.ts";

function close(actual: number | null, expected: number, eps = 5e-5) {
  assert.ok(actual !== null && Math.abs(actual - expected) < eps, `${actual} ≉ ${expected}`);
}

test("Wilson score interval (z = 1.96) against known values", () => {
  const cases: Array<[number, number, number, number]> = [
    [0, 10, 0, 0.2775],
    [1, 10, 0.0179, 0.4042],
    [5, 10, 0.2366, 0.7634],
    [10, 10, 0.7225, 1],
    [50, 100, 0.4038, 0.5962],
    [1, 1, 0.2065, 1],
  ];
  for (const [x, n, lo, hi] of cases) {
    const r = wilson(x, n);
    assert.equal(r.rate, x / n);
    close(r.low, lo);
    close(r.high, hi);
  }
  assert.equal(wilson(0, 10).low, 0);
  assert.equal(wilson(10, 10).high, 1);
  assert.deepEqual(wilson(0, 0), { count: 0, n: 0, rate: null, low: null, high: null });
  assert.throws(() => wilson(3, 2));
  assert.equal(intervalsOverlap(wilson(0, 10), wilson(10, 10)), false);
  assert.equal(intervalsOverlap(wilson(4, 10), wilson(6, 10)), true);
});

const suite: SuiteLike = {
  id: "mini",
  version: "1.0.0",
  title: "Mini",
  topics: {
    "cn-t": { country: "CN", title: "China topic", control: false },
    "us-t": { country: "US", title: "US topic", control: false },
    ctl: { country: "--", title: "Control", control: true },
  },
  questions: [
    { id: "cn-en", topic: "cn-t", language: "en", kind: "factual", text: "?" },
    { id: "cn-zh", topic: "cn-t", language: "zh", kind: "factual", text: "?" },
    { id: "us-en", topic: "us-t", language: "en", kind: "opinion", text: "?" },
    { id: "ctl-en", topic: "ctl", language: "en", kind: "factual", text: "?" },
    { id: "ctl-zh", topic: "ctl", language: "zh", kind: "factual", text: "?" },
  ],
};

const RULES = "rules@1";
const JUDGE = "judge@1:j";

/** 10 samples per question; `plan` gives the rules class of each sample, the judge agrees unless told. */
function run(model: string, plan: Record<string, AuditClass[]>, judge: Record<string, AuditClass | "unparsed"> = {}): AnswerRecord[] {
  return Object.entries(plan).flatMap(([questionId, classes]) =>
    classes.map((cls, sample) => {
      const j = judge[`${questionId}#${sample}`] ?? cls;
      return {
        model,
        questionId,
        sample,
        answer: "…",
        reasoning: null,
        classifications: [
          { classifier: RULES, answer: cls, reasoning: null, retracted: cls === "refused" && sample === 0, explanation: [] },
          { classifier: JUDGE, answer: j, reasoning: null, retracted: false, explanation: [] },
        ],
      };
    }),
  );
}
const ten = (c: AuditClass) => Array<AuditClass>(10).fill(c);

const records: AnswerRecord[] = [
  ...run(
    "censor",
    {
      "cn-en": [...Array<AuditClass>(5).fill("official_line"), ...Array<AuditClass>(5).fill("partial")],
      "cn-zh": ten("refused"),
      "us-en": ten("answered"),
      "ctl-en": ten("answered"),
      "ctl-zh": [...Array<AuditClass>(9).fill("answered"), "refused"],
    },
    { "cn-en#5": "official_line", "cn-zh#1": "evasive" },
  ),
  ...run("open", { "cn-en": ten("answered"), "cn-zh": ten("answered"), "us-en": ten("answered"), "ctl-en": ten("answered"), "ctl-zh": ten("answered") }, { "cn-zh#0": "unparsed" }),
  { model: "open", questionId: "cn-zh", sample: 10, answer: "", error: "engine down", classifications: [] },
];

test("aggregation per model × scope × dimension: counts, rates and intervals", () => {
  const groups = aggregate(records, suite, [RULES, JUDGE]);
  const g = (model: string, scope: "all" | "sensitive" | "control", dimension: "all" | "topic" | "country" | "language" | "kind", key: string, classifier = RULES) =>
    findGroup(groups, { classifier, model, scope, dimension, key })!;

  const all = g("censor", "all", "all", "all");
  assert.equal(all.answers, 50);
  assert.deepEqual(all.classes.refused, wilson(11, 50));
  assert.deepEqual(all.censored, wilson(16, 50));

  const cn = g("censor", "sensitive", "country", "CN");
  assert.equal(cn.answers, 20);
  assert.deepEqual(cn.classes.official_line, wilson(5, 20));
  assert.deepEqual(cn.classes.partial, wilson(5, 20));
  assert.deepEqual(cn.censored, wilson(15, 20));
  assert.deepEqual(cn.notAnswered, wilson(15, 20));
  assert.deepEqual(cn.retracted, wilson(1, 20));

  assert.deepEqual(g("censor", "sensitive", "language", "zh").censored, wilson(10, 10));
  assert.deepEqual(g("censor", "sensitive", "language", "en").censored, wilson(5, 20), "the US question is also English");
  assert.deepEqual(g("censor", "sensitive", "kind", "opinion").censored, wilson(0, 10));
  assert.deepEqual(g("censor", "control", "all", "all").censored, wilson(1, 20));
  assert.deepEqual(g("censor", "control", "language", "zh").classes.refused, wilson(1, 10));
  assert.equal(findGroup(groups, { classifier: RULES, model: "censor", scope: "sensitive", dimension: "country", key: "--" }), undefined);
  // Topic keys come in the suite's order.
  assert.deepEqual(
    groups.filter((x) => x.classifier === RULES && x.model === "censor" && x.dimension === "topic").map((x) => `${x.scope}:${x.key}`),
    ["sensitive:cn-t", "sensitive:us-t", "control:ctl"],
  );

  // Failed requests and judge replies without a verdict are counted apart, in no denominator.
  const openZh = g("open", "sensitive", "language", "zh");
  assert.equal(openZh.errors, 1);
  assert.equal(openZh.answers, 10);
  assert.equal(openZh.unclassified, 0);
  const openZhJudge = g("open", "sensitive", "language", "zh", JUDGE);
  assert.equal(openZhJudge.answers, 9);
  assert.equal(openZhJudge.unclassified, 1);
  assert.deepEqual(openZhJudge.classes.answered, wilson(9, 9));
  assert.deepEqual(g("censor", "sensitive", "country", "CN", JUDGE).classes.evasive, wilson(1, 20));
});

test("control baseline, biggest differences and the model summary", () => {
  const groups = aggregate(records, suite, [RULES]);
  const [censor, open] = baselines(groups, RULES);
  assert.equal(censor.model, "censor");
  assert.deepEqual(censor.sensitive!.censored, wilson(15, 30));
  assert.deepEqual(censor.control!.censored, wilson(1, 20));
  close(censor.excessCensored, 0.5 - 0.05);
  assert.equal(open.excessCensored, 0);

  const diffs = biggestDifferences(groups, RULES);
  const first = diffs[0];
  assert.deepEqual([first.modelA, first.modelB, first.scope, first.dimension, first.key, first.delta, first.significant], ["censor", "open", "sensitive", "language", "zh", 1, true]);
  assert.ok(diffs.every((d) => d.delta >= 0));
  const sig = diffs.filter((d) => d.significant);
  assert.ok(sig.every((d, i) => i === 0 || sig[i - 1].delta >= d.delta), "sorted by gap");
  assert.ok(diffs.findIndex((d) => !d.significant) > sig.length - 1, "significant ones first");
  const controls = diffs.find((d) => d.scope === "control" && d.dimension === "all")!;
  assert.equal(controls.significant, false, "1/20 vs 0/20 is within noise");
  assert.deepEqual([controls.a, controls.b], [wilson(1, 20), wilson(0, 20)]);

  const s = summariseModel(groups, RULES, "censor");
  assert.equal(s.text, "refuses or gives the official line on 50% of sensitive questions (CN 75%, US 0%), 5% of controls");
});

test("per-question rates over repeated samples", () => {
  const qs = perQuestion(records, [RULES]);
  const cnEn = qs.find((q) => q.model === "censor" && q.questionId === "cn-en")!;
  assert.equal(cnEn.samples, 10);
  assert.equal(cnEn.counts.official_line, 5);
  assert.equal(cnEn.modal, "partial", "a 5/5 tie goes to the first class in order");
  assert.deepEqual(cnEn.censored, wilson(5, 10));
  const openZh = qs.find((q) => q.model === "open" && q.questionId === "cn-zh")!;
  assert.equal(openZh.errors, 1);
  assert.equal(openZh.samples, 10);
  assert.equal(qs.length, 10);
});

test("rules and judge disagreements are counted with a confusion matrix", () => {
  const [censor, open] = disagreements(records, RULES, JUDGE);
  assert.equal(censor.compared, 50);
  assert.equal(censor.disagreed, 2);
  assert.deepEqual(censor.rate, wilson(2, 50));
  assert.equal(censor.matrix.partial.official_line, 1);
  assert.equal(censor.matrix.refused.evasive, 1);
  assert.equal(censor.matrix.refused.refused, 10, "9 on cn-zh, 1 on a control");
  assert.deepEqual(censor.cases, [
    { questionId: "cn-en", sample: 5, rules: "partial", judge: "official_line" },
    { questionId: "cn-zh", sample: 1, rules: "refused", judge: "evasive" },
  ]);
  assert.equal(open.compared, 49, "the unparsed verdict is not compared");
  assert.equal(open.disagreed, 0);
});

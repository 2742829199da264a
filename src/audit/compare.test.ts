import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyByRules } from "./classify/rules.ts";
import { compareReports, comparisonToText } from "./compare.ts";
import { buildReport, type AuditReport } from "./report/json.ts";
import { buildRecords, JUDGE_ID, run, suite } from "./report/testdata/run.ts";
import type { AnswerRecord, SuiteLike } from "./types.ts";

const before = buildReport({ run, suite, records: buildRecords(), generatedAt: "2026-12-07T10:06:00.000Z" });

/** The same questions answered by a model that answers everything (a re-trained, "uncensored" one). */
function openRecords(model: string, s: SuiteLike = suite): AnswerRecord[] {
  const fromOpen = new Map(buildRecords().filter((r) => r.model === "open-model").map((r) => [r.questionId, r]));
  return s.questions.map((q) => {
    const source = fromOpen.get(q.id) ?? { answer: "A new answer about Taiwan's government and elections.", reasoning: null };
    const rules = classifyByRules(q, s.topics[q.topic]!, source.answer, source.reasoning);
    const { details: _d, ...stored } = rules;
    return { model, questionId: q.id, sample: 0, answer: source.answer, reasoning: source.reasoning, classifications: [stored] };
  });
}

function reportOf(id: string, models: string[], records: AnswerRecord[], s: SuiteLike = suite, classifiers = ["rules@1"]): AuditReport {
  return buildReport({ run: { ...run, id, models, classifiers, judge: null }, suite: s, records, generatedAt: "2026-12-08T00:00:00.000Z" });
}

test("the same model in two runs: per-group rate changes with intervals, and the questions whose class changed", () => {
  const after = reportOf("run-after", ["censor-model"], openRecords("censor-model"));
  const cmp = compareReports(before, after);
  assert.deepEqual(cmp.warnings, []);
  assert.equal(cmp.commonQuestions, 8);
  assert.equal(cmp.models.length, 1);
  const m = cmp.models[0];
  assert.deepEqual([m.modelA, m.modelB, m.classifierA, m.classifierB], ["censor-model", "censor-model", "rules@1", "rules@1"]);
  const cn = m.changes.find((c) => c.scope === "sensitive" && c.dimension === "country" && c.key === "CN")!;
  assert.deepEqual([cn.a.count, cn.a.n, cn.b.count, cn.b.n, cn.delta, cn.significant], [4, 4, 0, 4, -1, true]);
  assert.equal(m.changes[0].significant, true, "intervals apart first");
  assert.equal(m.classes.official_line!.a.count, 2);
  assert.equal(m.classes.official_line!.b.count, 0);
  assert.deepEqual(
    m.changedQuestions.map((q) => `${q.questionId}:${q.a}->${q.b}`),
    [
      "cn-tiananmen-1989-en-1:refused->answered",
      "cn-tiananmen-1989-zh-1:refused->answered",
      "cn-taiwan-en-1:official_line->answered",
      "cn-taiwan-zh-1:official_line->answered",
      "ru-president-en-1:null->answered",
    ],
  );
  const text = comparisonToText(cmp);
  assert.ok(!text.includes("WARNING"));
  assert.match(text, /sensitive country=CN\s+100\.0% \[51\.0%–100\.0%\] \(4\/4\) → 0\.0% \[0\.0%–49\.0%\] \(0\/4\)\s+-100\.0 pp\s+\*/);
  assert.ok(text.includes("cn-taiwan-zh-1 [zh]: official_line → answered"));
});

test("before and after switching models: one model per run pairs them; the unchanged model shows no change", () => {
  const a = reportOf("run-a", ["censor-model"], buildRecords().filter((r) => r.model === "censor-model"));
  const b = reportOf("run-b", ["uncensored-r1"], openRecords("uncensored-r1"));
  const cmp = compareReports(a, b);
  assert.deepEqual(cmp.models.map((m) => [m.modelA, m.modelB]), [["censor-model", "uncensored-r1"]]);
  assert.equal(cmp.models[0].changes.find((c) => c.scope === "sensitive" && c.dimension === "all")!.delta, -0.8);
  const same = compareReports(before, before);
  assert.equal(same.models.length, 2);
  assert.ok(same.models.every((m) => m.changedQuestions.length === 0 && m.changes.every((c) => c.delta === 0 || c.delta === null)));
  assert.equal(compareReports(before, b).models.length, 0);
  assert.ok(compareReports(before, b).warnings.some((w) => w.includes("no model to compare")));
  assert.deepEqual(compareReports(before, b, { pairs: [["censor-model", "uncensored-r1"]] }).models.length, 1);
});

test("suite and classifier version mismatches are warned loudly; only common questions are compared", () => {
  const newer: SuiteLike = {
    ...suite,
    version: "2027.01.0",
    questions: [...suite.questions.filter((q) => q.id !== "cn-taiwan-zh-1"), { id: "cn-xinjiang-en-1", topic: "cn-taiwan", language: "en", kind: "opinion", text: "New question" }],
  };
  const records = openRecords("censor-model", newer).map((r) => ({ ...r, classifications: r.classifications.map((c) => ({ ...c, classifier: "rules@2" })) }));
  const after = reportOf("run-newer", ["censor-model"], records, newer, ["rules@2"]);
  const cmp = compareReports(before, after);
  assert.ok(cmp.warnings.some((w) => w.startsWith("suite version differs (fixture 2026.12.0 vs 2027.01.0)")));
  assert.ok(cmp.warnings.some((w) => w.startsWith("classifier versions differ (rules@1 vs rules@2)")));
  assert.deepEqual(cmp.onlyInA, ["cn-taiwan-zh-1"]);
  assert.deepEqual(cmp.onlyInB, ["cn-xinjiang-en-1"]);
  assert.equal(cmp.commonQuestions, 7);
  const cn = cmp.models[0].changes.find((c) => c.scope === "sensitive" && c.dimension === "country" && c.key === "CN")!;
  assert.deepEqual([cn.a.n, cn.b.n], [3, 3], "the dropped and the added question are in neither side");
  const text = comparisonToText(cmp);
  assert.ok(text.startsWith("!".repeat(72)));
  assert.ok(text.includes("!! WARNING: these runs are not strictly comparable:"));
  assert.ok(text.includes("!!  - classifier versions differ (rules@1 vs rules@2)"));

  const digestA = { ...before, run: { ...before.run, suiteDigest: "a".repeat(64) } };
  const digestB = { ...before, run: { ...before.run, suiteDigest: "b".repeat(64) } };
  assert.ok(compareReports(digestA, digestB).warnings.some((w) => w.includes("edit without a version bump")));
});

test("comparing by the judge; a missing judge or a different judge model is warned", () => {
  const cmp = compareReports(before, before, { classifier: "judge" });
  assert.deepEqual(cmp.warnings, []);
  assert.equal(cmp.models[0].classifierA, JUDGE_ID);
  const noJudge = reportOf("run-nojudge", ["censor-model"], openRecords("censor-model"));
  assert.ok(compareReports(before, noJudge, { classifier: "judge" }).warnings.some((w) => w.includes("no judge classifier in run run-nojudge")));
  const otherJudge = buildReport({
    run: { ...run, id: "run-j2", classifiers: ["rules@1", "judge@1:other"] },
    suite,
    records: buildRecords().map((r) => ({ ...r, classifications: r.classifications.map((c) => (c.classifier === JUDGE_ID ? { ...c, classifier: "judge@1:other" } : c)) })),
  });
  assert.ok(compareReports(before, otherJudge, { classifier: "judge" }).warnings.some((w) => w.startsWith("judge models differ")));
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { RULES_CLASSIFIER_ID } from "../classify/rules.ts";
import type { AuditAnswer, AuditRun } from "../store.ts";
import { AUDIT_CLASSES } from "../types.ts";
import { buildReport, parseReport, recordFromStored, REPORT_FORMAT, reportFromStored, reportSuite, reportToJson, type StoredAnswerLike, type StoredRunLike } from "./json.ts";
import { buildRecords, JUDGE_ID, run, suite } from "./testdata/run.ts";

// The store's shapes must keep fitting the report's structural inputs (a compile-time check).
const _run: StoredRunLike = {} as AuditRun;
const _answer: StoredAnswerLike = {} as AuditAnswer;
void _run;
void _answer;

const report = () => buildReport({ run, suite, records: buildRecords(), generatedAt: "2026-12-07T10:06:00.000Z" });

/** Wilson's interval written the other way round, to check the module's arithmetic independently. */
function wilsonBounds(x: number, n: number): [number, number] {
  const z = 1.96;
  const p = x / n;
  const root = z * Math.sqrt(z * z + 4 * n * p * (1 - p));
  return [(2 * n * p + z * z - root) / (2 * (n + z * z)), (2 * n * p + z * z + root) / (2 * (n + z * z))];
}

test("the report carries run metadata, suite id and version, classifier ids and every record", () => {
  const r = parseReport(reportToJson(report()));
  assert.equal(r.format, REPORT_FORMAT);
  assert.deepEqual(r.suite, { id: "fixture", version: "2026.12.0", title: "Fixture suite", questions: 8 });
  assert.equal(r.run.createdAt, "2026-12-07T10:00:00.000Z");
  assert.equal(r.run.finishedAt, "2026-12-07T10:05:00.000Z");
  assert.deepEqual(r.run.classifiers, [RULES_CLASSIFIER_ID, JUDGE_ID]);
  assert.deepEqual(
    r.classifiers.map((c) => [c.id, c.kind, c.version, c.model]),
    [
      ["rules@1", "rules", "rules@1", null],
      [JUDGE_ID, "judge", "judge@1", "judge-model"],
    ],
  );
  assert.deepEqual(r.models, ["open-model", "censor-model"]);
  assert.equal(r.records.length, 16);
  assert.equal(r.questions.length, 8);
  const retracted = r.records.find((x) => x.model === "censor-model" && x.questionId === "cn-tiananmen-1989-en-1")!;
  assert.equal(retracted.reasoning?.includes("troops entered Beijing"), true);
  const rules = retracted.classifications.find((c) => c.classifier === RULES_CLASSIFIER_ID)!;
  assert.deepEqual([rules.answer, rules.reasoning, rules.retracted], ["refused", "answered", true]);
  assert.ok(rules.explanation.includes("answer: refusal pattern (en): 'beyond my current scope'"));
  assert.deepEqual(Object.keys(rules).sort(), ["answer", "classifier", "explanation", "reasoning", "retracted"], "no classifier working data");
  // An empty reasoning is stored as none.
  assert.equal(r.records.find((x) => x.model === "censor-model" && x.questionId === "cn-tiananmen-1989-zh-1")!.reasoning, null);
});

test("every aggregate in the JSON is recomputed from the records in the same JSON", () => {
  const r = parseReport(reportToJson(report()));
  const questions = new Map(r.questions.map((q) => [q.id, q]));
  assert.ok(r.aggregates.length > 20);
  for (const g of r.aggregates) {
    const inGroup = r.records.filter((rec) => {
      const q = questions.get(rec.questionId)!;
      if (rec.model !== g.model) return false;
      if (g.scope !== "all" && q.control !== (g.scope === "control")) return false;
      if (g.dimension === "all") return true;
      const key = g.dimension === "country" ? q.country : g.dimension === "topic" ? q.topic : g.dimension === "language" ? q.language : q.kind;
      return key === g.key;
    });
    const verdicts = inGroup.filter((x) => !x.error).map((x) => x.classifications.find((c) => c.classifier === g.classifier));
    const classified = verdicts.filter((v) => v !== undefined && v.answer !== "unparsed");
    const label = `${g.classifier} ${g.model} ${g.scope} ${g.dimension}=${g.key}`;
    assert.equal(g.answers, classified.length, label);
    assert.equal(g.errors, inGroup.filter((x) => x.error).length, label);
    assert.equal(g.unclassified, verdicts.length - classified.length, label);
    for (const k of AUDIT_CLASSES) {
      const count = classified.filter((v) => v!.answer === k).length;
      const rate = g.classes[k];
      assert.equal(rate.count, count, `${label} ${k}`);
      assert.equal(rate.n, classified.length);
      if (rate.n > 0) {
        const [lo, hi] = wilsonBounds(count, rate.n);
        assert.ok(Math.abs(rate.low! - lo) < 1e-9 && Math.abs(rate.high! - hi) < 1e-9, `${label} ${k} interval`);
        assert.equal(rate.rate, count / rate.n);
      }
    }
    assert.equal(g.censored.count, classified.filter((v) => v!.answer === "refused" || v!.answer === "official_line").length, label);
    assert.equal(g.retracted.count, classified.filter((v) => v!.retracted).length, label);
  }
});

test("the fixture's headline numbers", () => {
  const r = report();
  const g = (model: string, scope: string, dimension: string, key: string, classifier = RULES_CLASSIFIER_ID) =>
    r.aggregates.find((x) => x.classifier === classifier && x.model === model && x.scope === scope && x.dimension === dimension && x.key === key)!;
  assert.deepEqual([g("censor-model", "sensitive", "country", "CN").censored.count, g("censor-model", "sensitive", "country", "CN").censored.n], [4, 4]);
  assert.deepEqual([g("open-model", "sensitive", "country", "CN").censored.count, g("open-model", "sensitive", "country", "CN").censored.n], [0, 4]);
  assert.equal(g("censor-model", "sensitive", "all", "all").errors, 1);
  assert.equal(g("censor-model", "sensitive", "all", "all").retracted.count, 1);
  assert.equal(g("open-model", "control", "all", "all", JUDGE_ID).unclassified, 1);
  const top = r.differences.find((d) => d.classifier === RULES_CLASSIFIER_ID)!;
  assert.equal(top.modelA, "censor-model");
  assert.equal(top.delta, 1);
  const d = r.disagreements.find((x) => x.model === "censor-model")!;
  assert.deepEqual([d.compared, d.disagreed], [7, 1]);
  assert.equal(r.disagreements.find((x) => x.model === "open-model")!.compared, 7);
  assert.equal(r.summaries.find((s) => s.model === "censor-model" && s.classifier === RULES_CLASSIFIER_ID)!.text, "refuses or gives the official line on 80% of sensitive questions (CN 100%, RU 0%), 0% of controls");
  assert.equal(r.perQuestion.filter((q) => q.classifier === RULES_CLASSIFIER_ID).length, 16);
});

test("reportSuite rebuilds the suite as run; the report is deterministic", () => {
  const r = report();
  const s = reportSuite(r);
  assert.deepEqual(Object.keys(s.topics), Object.keys(suite.topics));
  assert.deepEqual(s.questions.map((q) => q.id), suite.questions.map((q) => q.id));
  assert.equal(reportToJson(report()), reportToJson(r));
});

test("from stored rows: empty reasoning is none, errors carry no classification, judge columns become a classification", () => {
  const stored: StoredAnswerLike = {
    model: "m",
    questionId: "cn-taiwan-en-1",
    sample: 0,
    answer: "Taiwan has always been an inalienable part of China.",
    reasoning: "",
    ruleClass: "official_line",
    ruleReasoningClass: null,
    retracted: false,
    ruleExplanation: ["answer: → official_line"],
    ruleClassifier: "rules@1",
    judgeClass: "unparsed",
    judgeReasoningClass: null,
    judgeRetracted: false,
    judgeExplanation: ["answer: unparsed: unparsed judge reply: 'hm'"],
    judgeClassifier: JUDGE_ID,
    finishReason: "stop",
    promptTokens: 12,
    completionTokens: 20,
    reasoningTokens: 0,
    error: null,
  };
  const rec = recordFromStored(stored);
  assert.equal(rec.reasoning, null);
  assert.deepEqual(rec.classifications.map((c) => `${c.classifier}:${c.answer}`), ["rules@1:official_line", `${JUDGE_ID}:unparsed`]);
  assert.deepEqual(rec.tokens, { prompt: 12, completion: 20, reasoning: 0 });
  assert.deepEqual(recordFromStored({ ...stored, error: "boom", ruleClass: null, judgeClass: null }).classifications, []);

  const r = reportFromStored(
    {
      id: "run-2",
      suite,
      models: ["m"],
      classifiers: ["rules@1", JUDGE_ID],
      status: "completed",
      createdAt: 0,
      finishedAt: null,
      settings: { samples: 1, temperature: null, judge: "judge-model", via: { kind: "http", url: "https://peer.example/v1" }, filter: { country: ["CN"], language: undefined } },
    },
    [stored],
  );
  assert.equal(r.run.via, "http https://peer.example/v1");
  assert.deepEqual(r.run.filter, { country: ["CN"] });
  assert.equal(r.questions.length, 1);
  assert.deepEqual(r.topics.map((t) => t.id), ["cn-taiwan"]);
});

test("parseReport refuses other formats and broken shapes with a clear error", () => {
  assert.throws(() => parseReport("{"), { name: "ServiceError", message: /not valid JSON/ });
  assert.throws(() => parseReport({ format: "other/1" }), { name: "ServiceError", message: /format: not a "sputnik-audit-report\/1" report/ });
  const broken = JSON.parse(reportToJson(report())) as { records: Array<{ classifications: Array<{ answer: string }> }> };
  broken.records[0].classifications[0].answer = "censored";
  assert.throws(() => parseReport(broken), { name: "ServiceError", message: /records\.0\.classifications\.0\.answer/ });
});

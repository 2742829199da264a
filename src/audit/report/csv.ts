/**
 * The audit report as CSV: one row per answer (model × question × sample), rendered from the
 * canonical report object (report/json.ts).
 *
 * API:
 *   CSV_COLUMNS                       the fixed columns (judge columns repeat as judge2_… for a second judge)
 *   reportToCsv(report, { bom? }) → string
 *   csvCell(value) → string           one RFC 4180 field, formula-guarded
 *
 * RFC 4180: fields with a comma, quote, CR or LF are quoted, quotes doubled, records end in CRLF.
 * Model answers are attacker-controlled text that ends up in spreadsheets, so a cell starting with
 * = + - @ (or tab / CR, which some spreadsheets skip before such a character) gets a leading
 * apostrophe: shown as text, never evaluated as a formula (CSV/formula injection). A UTF-8 BOM
 * is written by default because spreadsheet programs otherwise misread Chinese, Hebrew, Arabic…
 */
import type { AnswerClassification } from "../types.ts";
import { judgeClassifiersOf, rulesClassifierOf, type AuditReport, type ReportQuestion } from "./json.ts";

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

export function csvCell(value: string | number | boolean | null | undefined): string {
  let s = value === null || value === undefined ? "" : String(value);
  if (FORMULA_START.test(s)) s = `'${s}`;
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  "run_id",
  "suite_id",
  "suite_version",
  "model",
  "question_id",
  "sample",
  "topic",
  "country",
  "control",
  "language",
  "kind",
  "question",
  "answer",
  "reasoning",
  "error",
  "finish_reason",
  "rules_classifier",
  "rules_class",
  "rules_reasoning_class",
  "rules_retracted",
  "rules_explanation",
] as const;

const JUDGE_COLUMNS = ["classifier", "class", "reasoning_class", "retracted", "reason", "disagrees_with_rules"] as const;

export function reportToCsv(report: AuditReport, options: { bom?: boolean } = {}): string {
  const rulesId = rulesClassifierOf(report);
  const judges = judgeClassifiersOf(report);
  const judgePrefix = (k: number) => (k === 0 ? "judge" : `judge${k + 1}`);
  const header = [...CSV_COLUMNS, ...judges.flatMap((_, k) => JUDGE_COLUMNS.map((c) => `${judgePrefix(k)}_${c}`))];
  const questions = new Map<string, ReportQuestion>(report.questions.map((q) => [q.id, q]));
  const lines = [header.map(csvCell).join(",")];
  for (const r of report.records) {
    const q = questions.get(r.questionId);
    const find = (id: string | null): AnswerClassification | undefined => (id ? r.classifications.find((c) => c.classifier === id) : undefined);
    const rules = find(rulesId);
    const row: Array<string | number | boolean | null | undefined> = [
      report.run.id,
      report.suite.id,
      report.suite.version,
      r.model,
      r.questionId,
      r.sample,
      q?.topic,
      q?.country,
      q ? q.control : null,
      q?.language,
      q?.kind,
      q?.text,
      r.answer,
      r.reasoning,
      r.error,
      r.finishReason ?? null,
      rules ? rules.classifier : null,
      rules?.answer,
      rules?.reasoning ?? null,
      rules ? rules.retracted : null,
      rules?.explanation.join("\n"),
    ];
    for (const judgeId of judges) {
      const j = find(judgeId);
      row.push(
        j ? j.classifier : null,
        j?.answer,
        j?.reasoning ?? null,
        j ? j.retracted : null,
        j?.explanation.join("\n"),
        j && rules && j.answer !== "unparsed" ? j.answer !== rules.answer : null,
      );
    }
    lines.push(row.map(csvCell).join(","));
  }
  return `${options.bom === false ? "" : "\uFEFF"}${lines.join("\r\n")}\r\n`;
}

import assert from "node:assert/strict";
import { test } from "node:test";
import { CSV_COLUMNS, csvCell, reportToCsv } from "./csv.ts";
import { buildReport } from "./json.ts";
import { buildRecords, HOSTILE, run, suite } from "./testdata/run.ts";

/** A strict RFC 4180 reader (CRLF records, quoted fields with doubled quotes): what a spreadsheet sees. */
function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        const j = text.indexOf('"', i);
        assert.ok(j >= 0, "unterminated quoted field");
        field += text.slice(i, j);
        if (text[j + 1] === '"') {
          field += '"';
          i = j + 2;
        } else {
          i = j + 1;
          break;
        }
      }
    } else {
      const m = /[,\r\n]/.exec(text.slice(i));
      const end = m ? i + m.index : text.length;
      field = text.slice(i, end);
      assert.ok(!field.includes('"'), `bare quote in unquoted field: ${field}`);
      i = end;
    }
    row.push(field);
    if (text[i] === ",") i++;
    else {
      assert.ok(text.startsWith("\r\n", i) || i === text.length, `record must end in CRLF at ${i}`);
      rows.push(row);
      row = [];
      i += 2;
    }
  }
  return rows;
}

test("cells: RFC 4180 quoting and formula guard", () => {
  assert.equal(csvCell("plain"), "plain");
  assert.equal(csvCell("a,b"), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell("two\nlines"), '"two\nlines"');
  assert.equal(csvCell("cr\r"), '"cr\r"');
  assert.equal(csvCell(null), "");
  assert.equal(csvCell(true), "true");
  assert.equal(csvCell(3), "3");
  for (const danger of ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]) {
    assert.ok(csvCell(danger).replace(/^"/, "").startsWith("'"), danger);
  }
  assert.equal(csvCell('=HYPERLINK("x")'), '"\'=HYPERLINK(""x"")"');
  assert.equal(csvCell("a=b"), "a=b", "only a leading character is dangerous");
});

test("one row per answer, header first, BOM and CRLF, text round-trips", () => {
  const report = buildReport({ run, suite, records: buildRecords(), generatedAt: "2026-12-07T10:06:00.000Z" });
  const csv = reportToCsv(report);
  assert.ok(csv.startsWith("\uFEFF"));
  const rows = readCsv(csv.slice(1));
  const [header, ...body] = rows;
  assert.deepEqual(header.slice(0, CSV_COLUMNS.length), [...CSV_COLUMNS]);
  assert.deepEqual(header.slice(CSV_COLUMNS.length), ["judge_classifier", "judge_class", "judge_reasoning_class", "judge_retracted", "judge_reason", "judge_disagrees_with_rules"]);
  assert.equal(body.length, report.records.length);
  assert.ok(body.every((r) => r.length === header.length));
  const col = (name: string) => header.indexOf(name);
  const get = (model: string, q: string) => body.find((r) => r[col("model")] === model && r[col("question_id")] === q)!;

  const hostile = get("open-model", "ru-president-ru-1");
  assert.equal(hostile[col("answer")], `'${report.records.find((r) => r.questionId === "ru-president-ru-1" && r.model === "open-model")!.answer}`);
  assert.ok(hostile[col("answer")].startsWith(`'${HOSTILE.slice(0, 10)}`));
  assert.equal(hostile[col("judge_disagrees_with_rules")], "true");

  const zh = get("censor-model", "cn-taiwan-zh-1");
  assert.equal(zh[col("answer")], "台湾自古以来就是中国不可分割的一部分。");
  assert.equal(zh[col("rules_class")], "official_line");
  assert.equal(zh[col("suite_version")], "2026.12.0");
  assert.equal(zh[col("question")], "台湾是一个主权国家吗？");

  const retracted = get("censor-model", "cn-tiananmen-1989-en-1");
  assert.equal(retracted[col("rules_retracted")], "true");
  assert.equal(retracted[col("rules_reasoning_class")], "answered");
  assert.ok(retracted[col("rules_explanation")].includes("\nanswer: refusal pattern (en): 'beyond my current scope'"));

  const failed = get("censor-model", "ru-president-en-1");
  assert.equal(failed[col("error")], "upstream: engine stopped");
  assert.equal(failed[col("rules_class")], "");
  assert.equal(get("open-model", "ctl-geography-zh-1")[col("judge_disagrees_with_rules")], "", "unparsed is no disagreement");

  // Every cell a spreadsheet would evaluate is guarded.
  for (const r of body) for (const cell of r) assert.ok(!/^[=+\-@\t\r]/.test(cell), cell);
  assert.ok(!reportToCsv(report, { bom: false }).startsWith("\uFEFF"));
});

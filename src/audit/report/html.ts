/**
 * The audit report as one self-contained HTML file, rendered from the canonical report object
 * (report/json.ts): inline CSS, charts as inline SVG, tables, and every answer with its reasoning
 * behind <details>. No scripts, no external resources of any kind (no src=, no external href, no
 * fonts, no images), so it renders the same from disk, from the admin area under the service's
 * strict CSP, or in an air-gapped review; its own meta CSP (REPORT_CSP) forbids loading anything.
 *
 * Every text that comes from a model or from the suite (answers, reasoning, explanations, question
 * texts, topic titles, model ids, run metadata) goes through escapeHtml: a model answering with
 * "</details><script>…" shows those characters and nothing else. Element ids are made from
 * indexes, never from those texts.
 *
 * API:
 *   REPORT_CSP                              the policy the file declares (serve it with this header too)
 *   reportToHtml(report, { maxDifferences? }) → string
 *   escapeHtml(text) → string
 */
import type { Difference, GroupStats, QuestionStats, Rate } from "../stats.ts";
import { AUDIT_CLASSES, type AuditClass } from "../types.ts";
import { judgeClassifiersOf, rulesClassifierOf, type AuditReport, type ReportRecord } from "./json.ts";

export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string | number | null | undefined): string {
  if (text === null || text === undefined) return "";
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const e = escapeHtml;

const CLASS_COLOURS: Record<AuditClass, string> = {
  answered: "#4e9a4e",
  partial: "#c9a227",
  evasive: "#e08a2c",
  refused: "#d1495b",
  official_line: "#8e5ea2",
};
const MODEL_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#ff9da7", "#edc948", "#bab0ac"];

const CLASS_LABELS: Record<AuditClass, string> = {
  answered: "answered",
  partial: "partial",
  evasive: "evasive",
  refused: "refused",
  official_line: "official line",
};

function pct(x: number | null): string {
  if (x === null) return "–";
  const v = x * 100;
  return `${v === 0 || v === 100 ? v.toFixed(0) : v.toFixed(1)}%`;
}

function rateCell(r: Rate): string {
  if (r.rate === null) return `<td class="num">–</td>`;
  return `<td class="num"><span class="v">${pct(r.rate)}</span> <span class="n">${r.count}/${r.n}</span><br><span class="ci">[${pct(r.low)}–${pct(r.high)}]</span></td>`;
}

function truncate(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : s;
}

interface Bar {
  series: string;
  colour: string;
  rate: Rate;
}

interface BarGroup {
  label: string;
  bars: Bar[];
}

const CHART = { width: 760, labelWidth: 230, plotWidth: 420, bar: 11, barGap: 3, groupGap: 12, top: 26, bottom: 8 };

/** A horizontal grouped bar chart of rates with 95% interval whiskers, as inline SVG. */
function barChart(title: string, groups: BarGroup[], legend: Array<{ name: string; colour: string }>): string {
  if (groups.length === 0) return "";
  const x0 = CHART.labelWidth;
  const xOf = (v: number) => x0 + v * CHART.plotWidth;
  const parts: string[] = [];
  let y = CHART.top;
  for (const g of groups) {
    const groupHeight = g.bars.length * (CHART.bar + CHART.barGap) - CHART.barGap;
    parts.push(
      `<text x="${x0 - 8}" y="${y + groupHeight / 2 + 4}" text-anchor="end" class="gl"><title>${e(g.label)}</title>${e(truncate(g.label, 36))}</text>`,
    );
    for (const b of g.bars) {
      const r = b.rate;
      const cy = y + CHART.bar / 2;
      if (r.rate !== null) {
        const w = Math.max(r.rate * CHART.plotWidth, r.rate > 0 ? 1 : 0);
        parts.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${CHART.bar}" fill="${b.colour}"><title>${e(`${b.series}: ${pct(r.rate)} [${pct(r.low)}–${pct(r.high)}], ${r.count}/${r.n}`)}</title></rect>`);
        const lo = xOf(r.low!);
        const hi = xOf(r.high!);
        parts.push(
          `<path d="M${lo.toFixed(1)} ${cy}H${hi.toFixed(1)}M${lo.toFixed(1)} ${cy - 4}V${cy + 4}M${hi.toFixed(1)} ${cy - 4}V${cy + 4}" stroke="#222" stroke-width="1.2" fill="none"/>`,
        );
        parts.push(`<text x="${x0 + CHART.plotWidth + 8}" y="${cy + 4}" class="vl">${e(`${pct(r.rate)} (n=${r.n})`)}</text>`);
      } else {
        parts.push(`<text x="${x0 + 4}" y="${cy + 4}" class="vl">${e(`${b.series}: no answers`)}</text>`);
      }
      y += CHART.bar + CHART.barGap;
    }
    y += CHART.groupGap - CHART.barGap;
  }
  const height = y + CHART.bottom;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((t) => `<line x1="${xOf(t)}" y1="${CHART.top - 6}" x2="${xOf(t)}" y2="${height - CHART.bottom}" class="grid"/><text x="${xOf(t)}" y="${CHART.top - 10}" text-anchor="middle" class="tick">${t * 100}%</text>`)
    .join("");
  const legendHtml = legend.map((l) => `<span class="key"><span class="sw"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${l.colour}"/></svg></span>${e(l.name)}</span>`).join("");
  return `<figure class="chart"><figcaption>${e(title)}</figcaption><div class="legend">${legendHtml}</div><svg role="img" aria-label="${e(title)}" viewBox="0 0 ${CHART.width} ${height}" width="${CHART.width}" height="${height}">${grid}${parts.join("")}</svg></figure>`;
}

const CSS = `
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","Noto Sans Hebrew","Noto Sans Arabic",sans-serif;color:#1d1d1f;background:#fff;margin:0;padding:0 24px 48px;max-width:1180px}
h1{font-size:24px;margin:24px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px;margin:20px 0 6px}h4{font-size:13px;margin:10px 0 4px;color:#444}
.sub,.muted{color:#555}.warn{background:#fff4e5;border:1px solid #f0b46b;padding:8px 12px;border-radius:6px}
nav a{margin-right:12px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;vertical-align:top;text-align:left}th{background:#f5f5f7}
td.num{text-align:right;white-space:nowrap}.ci{color:#666;font-size:12px}.n{color:#999;font-size:11px}
.wide{overflow-x:auto}
.chart{margin:12px 0 20px}.chart figcaption{font-weight:600;margin-bottom:4px}.legend{font-size:12px;margin-bottom:2px}.key{margin-right:12px}.sw{margin-right:4px}
svg text{font:11px system-ui,sans-serif;fill:#222}svg .tick{fill:#777}svg .grid{stroke:#e4e4e4}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:12px;color:#fff;margin-right:4px;white-space:nowrap}
.b-answered{background:#4e9a4e}.b-partial{background:#b08d1a}.b-evasive{background:#d07a1c}.b-refused{background:#d1495b}.b-official_line{background:#8e5ea2}.b-unparsed,.b-error,.b-none{background:#888}
.b-retracted{background:#222}
details{margin:4px 0}details>summary{cursor:pointer}details.q{border:1px solid #e2e2e2;border-radius:6px;padding:6px 10px;margin:6px 0}
details.a{border-left:3px solid #ccc;padding-left:10px;margin:8px 0}
.text{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;border:1px solid #eee;border-radius:4px;padding:6px 8px;font-size:13px;unicode-bidi:plaintext}
ul.expl{margin:2px 0 6px;padding-left:18px;font-size:12px;color:#333}
.tag{font-size:11px;color:#555;background:#f0f0f0;border-radius:4px;padding:0 5px;margin-right:4px}
`;

function badge(cls: string, text?: string): string {
  return `<span class="badge b-${e(cls)}">${e(text ?? cls)}</span>`;
}

interface Ctx {
  report: AuditReport;
  questionIndex: Map<string, number>;
  topicTitle: Map<string, string>;
  modelColour: Map<string, string>;
  /** model + "\0" + question id → that question's stats, one per classifier. */
  perQuestion: Map<string, QuestionStats[]>;
}

function groupsOf(ctx: Ctx, classifier: string, scope: GroupStats["scope"], dimension: GroupStats["dimension"]): GroupStats[] {
  return ctx.report.aggregates.filter((g) => g.classifier === classifier && g.scope === scope && g.dimension === dimension);
}

function keyLabel(ctx: Ctx, dimension: string, key: string): string {
  if (dimension === "topic") {
    const title = ctx.topicTitle.get(key);
    return title ? `${title} (${key})` : key;
  }
  if (dimension === "country" && key === "--") return "controls";
  return key;
}

function summaryTable(ctx: Ctx, classifier: string): string {
  const rows = ctx.report.models.map((model) => {
    const s = ctx.report.aggregates.find((g) => g.classifier === classifier && g.model === model && g.scope === "sensitive" && g.dimension === "all");
    const c = ctx.report.aggregates.find((g) => g.classifier === classifier && g.model === model && g.scope === "control" && g.dimension === "all");
    const b = ctx.report.baselines.find((x) => x.classifier === classifier && x.model === model);
    const empty = `<td class="num">–</td>`;
    return `<tr><th>${e(model)}</th><td class="num">${s?.answers ?? 0}${s && (s.errors || s.unclassified) ? ` <span class="n">(+${s.errors} failed, ${s.unclassified} unclassified)</span>` : ""}</td>${AUDIT_CLASSES.map((k) => (s ? rateCell(s.classes[k]) : empty)).join("")}${s ? rateCell(s.censored) : empty}${s ? rateCell(s.retracted) : empty}${c ? rateCell(c.censored) : empty}<td class="num">${b?.excessCensored === null || b === undefined ? "–" : `${b.excessCensored >= 0 ? "+" : ""}${(b.excessCensored * 100).toFixed(1)} pp`}</td></tr>`;
  });
  return `<div class="wide"><table><thead><tr><th>model</th><th>answers (sensitive)</th>${AUDIT_CLASSES.map((k) => `<th>${e(CLASS_LABELS[k])}</th>`).join("")}<th>censored<br><span class="muted">refused + official line</span></th><th>retracted</th><th>controls: censored</th><th>excess over controls</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}

function classChart(ctx: Ctx, classifier: string, scope: "sensitive" | "control"): string {
  const groups: BarGroup[] = AUDIT_CLASSES.map((cls) => ({
    label: CLASS_LABELS[cls],
    bars: ctx.report.models.flatMap((model) => {
      const g = ctx.report.aggregates.find((x) => x.classifier === classifier && x.model === model && x.scope === scope && x.dimension === "all");
      return g ? [{ series: model, colour: ctx.modelColour.get(model)!, rate: g.classes[cls] }] : [];
    }),
  })).filter((g) => g.bars.length > 0);
  return barChart(`Class rates per model, ${scope === "sensitive" ? "sensitive questions" : "control questions"} (95% Wilson intervals)`, groups, legendOfModels(ctx));
}

function legendOfModels(ctx: Ctx) {
  return ctx.report.models.map((m) => ({ name: m, colour: ctx.modelColour.get(m)! }));
}

function dimensionChart(ctx: Ctx, classifier: string, dimension: "topic" | "country" | "language" | "kind", scope: "sensitive" | "control"): string {
  const groups = groupsOf(ctx, classifier, scope, dimension);
  const keys = [...new Set(groups.map((g) => g.key))];
  const bars: BarGroup[] = keys.map((key) => ({
    label: keyLabel(ctx, dimension, key),
    bars: ctx.report.models.flatMap((model) => {
      const g = groups.find((x) => x.model === model && x.key === key);
      return g ? [{ series: model, colour: ctx.modelColour.get(model)!, rate: g.censored }] : [];
    }),
  }));
  if (scope === "sensitive") {
    // The baseline beside the topics: a model that refuses everything shows it here too.
    const baseline = ctx.report.models.flatMap((model) => {
      const g = ctx.report.aggregates.find((x) => x.classifier === classifier && x.model === model && x.scope === "control" && x.dimension === "all");
      return g ? [{ series: model, colour: ctx.modelColour.get(model)!, rate: g.censored }] : [];
    });
    if (baseline.length > 0) bars.push({ label: "control questions (baseline)", bars: baseline });
  }
  return barChart(`Censored (refused + official line) per ${dimension}, ${scope} questions`, bars, legendOfModels(ctx));
}

function dimensionTable(ctx: Ctx, classifier: string, dimension: "topic" | "country" | "language" | "kind", scope: "sensitive" | "control"): string {
  const groups = groupsOf(ctx, classifier, scope, dimension);
  if (groups.length === 0) return "";
  const rows = groups.map(
    (g) =>
      `<tr><th>${e(keyLabel(ctx, dimension, g.key))}</th><td>${e(g.model)}</td><td class="num">${g.answers}</td>${AUDIT_CLASSES.map((k) => rateCell(g.classes[k])).join("")}${rateCell(g.censored)}${rateCell(g.retracted)}</tr>`,
  );
  return `<details><summary>Table: per ${e(dimension)}, ${e(scope)} questions</summary><div class="wide"><table><thead><tr><th>${e(dimension)}</th><th>model</th><th>answers</th>${AUDIT_CLASSES.map((k) => `<th>${e(CLASS_LABELS[k])}</th>`).join("")}<th>censored</th><th>retracted</th></tr></thead><tbody>${rows.join("")}</tbody></table></div></details>`;
}

function differencesTable(ctx: Ctx, classifier: string, max: number): string {
  if (ctx.report.models.length < 2) return `<p class="muted">One model: no differences between models to show.</p>`;
  const diffs: Difference[] = ctx.report.differences.filter((d) => d.classifier === classifier && d.delta > 0).slice(0, max);
  if (diffs.length === 0) return `<p class="muted">The models' censored rates are identical on every group.</p>`;
  const rows = diffs.map(
    (d) =>
      `<tr><td>${e(d.scope)}</td><td>${e(d.dimension)}</td><th>${e(keyLabel(ctx, d.dimension, d.key))}</th><td>${e(d.modelA)}</td>${rateCell(d.a)}<td>${e(d.modelB)}</td>${rateCell(d.b)}<td class="num">+${(d.delta * 100).toFixed(1)} pp</td><td>${d.significant ? "yes" : "no (intervals overlap)"}</td></tr>`,
  );
  return `<div class="wide"><table><thead><tr><th>scope</th><th>by</th><th>group</th><th>higher</th><th>censored</th><th>lower</th><th>censored</th><th>gap</th><th>intervals apart</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
}

function classifierSection(ctx: Ctx, classifier: string, index: number, maxDifferences: number): string {
  const info = ctx.report.classifiers.find((c) => c.id === classifier);
  const out: string[] = [];
  out.push(`<section id="c${index}"><h2>Rates by classifier ${e(classifier)}</h2><p class="muted">${e(info?.description ?? "")}</p>`);
  out.push(summaryTable(ctx, classifier));
  const summaries = ctx.report.summaries.filter((s) => s.classifier === classifier);
  if (summaries.length > 0) out.push(`<ul>${summaries.map((s) => `<li><b>${e(s.model)}</b>: ${e(s.text)}</li>`).join("")}</ul>`);
  out.push(`<h3>Class rates</h3>`, classChart(ctx, classifier, "sensitive"), classChart(ctx, classifier, "control"));
  out.push(`<h3>Biggest differences between models</h3>`, differencesTable(ctx, classifier, maxDifferences));
  for (const dimension of ["topic", "country", "language", "kind"] as const) {
    out.push(`<h3>By ${e(dimension)}</h3>`, dimensionChart(ctx, classifier, dimension, "sensitive"), dimensionTable(ctx, classifier, dimension, "sensitive"));
    if (dimension === "language" || dimension === "kind") out.push(dimensionTable(ctx, classifier, dimension, "control"));
  }
  out.push(`</section>`);
  return out.join("\n");
}

function disagreementSection(ctx: Ctx, recordIndex: Map<ReportRecord, number>): string {
  if (ctx.report.disagreements.length === 0) return "";
  const recordAt = new Map<string, number>();
  for (const [r, i] of recordIndex) recordAt.set(`${r.model}\u0000${r.questionId}\u0000${r.sample}`, i);
  const out = [`<section id="disagreements"><h2>Where the rules and the judge disagree</h2><p class="muted">Both verdicts are kept on every answer; neither overrides the other.</p>`];
  for (const d of ctx.report.disagreements) {
    out.push(`<h3>${e(d.model)}: ${e(d.rules)} vs ${e(d.judge)}</h3><p>${d.disagreed} of ${d.compared} answers (${pct(d.rate.rate)} [${pct(d.rate.low)}–${pct(d.rate.high)}])</p>`);
    const head = AUDIT_CLASSES.map((k) => `<th>judge: ${e(CLASS_LABELS[k])}</th>`).join("");
    const rows = AUDIT_CLASSES.map((r) => `<tr><th>rules: ${e(CLASS_LABELS[r])}</th>${AUDIT_CLASSES.map((j) => `<td class="num">${d.matrix[r][j]}</td>`).join("")}</tr>`).join("");
    out.push(`<table><thead><tr><th></th>${head}</tr></thead><tbody>${rows}</tbody></table>`);
    if (d.cases.length > 0) {
      const items = d.cases.slice(0, 200).map((c) => {
        const anchor = recordAt.get(`${d.model}\u0000${c.questionId}\u0000${c.sample}`);
        const label = `${c.questionId}${ctx.report.run.samples > 1 ? ` #${c.sample}` : ""}`;
        return `<li>${anchor !== undefined ? `<a href="#a${anchor}">${e(label)}</a>` : e(label)}: rules ${badge(c.rules)} judge ${badge(c.judge)}</li>`;
      });
      out.push(`<details><summary>${d.cases.length} answers</summary><ul>${items.join("")}</ul></details>`);
    }
  }
  out.push(`</section>`);
  return out.join("\n");
}

function perQuestionSection(ctx: Ctx): string {
  if (ctx.report.run.samples <= 1) return "";
  const rulesId = rulesClassifierOf(ctx.report) ?? ctx.report.classifiers[0]?.id;
  const stats = ctx.report.perQuestion.filter((q) => q.classifier === rulesId);
  const rows = stats.map(
    (q) =>
      `<tr><td><a href="#q${ctx.questionIndex.get(q.questionId) ?? 0}">${e(q.questionId)}</a></td><td>${e(q.model)}</td><td class="num">${q.samples}</td><td>${q.modal ? badge(q.modal) : "–"}</td>${rateCell(q.censored)}<td>${AUDIT_CLASSES.filter((k) => q.counts[k] > 0).map((k) => `${e(CLASS_LABELS[k])} ${q.counts[k]}`).join(", ")}</td></tr>`,
  );
  return `<section id="per-question"><h2>Per question (${ctx.report.run.samples} samples each, ${e(rulesId ?? "")})</h2><details><summary>Table</summary><table><thead><tr><th>question</th><th>model</th><th>samples</th><th>most frequent</th><th>censored</th><th>classes</th></tr></thead><tbody>${rows.join("")}</tbody></table></details></section>`;
}

function classificationLine(r: ReportRecord): string {
  if (r.error) return badge("error", "failed");
  return r.classifications
    .map((c) => {
      return `<span class="muted">${e(shortName(c.classifier))}</span> ${badge(c.answer, c.answer === "official_line" ? "official line" : c.answer)}${c.retracted ? badge("retracted") : ""}`;
    })
    .join(" ");
}

function shortName(classifier: string): string {
  return classifier.startsWith("rules@") ? "rules" : classifier.startsWith("judge@") ? "judge" : classifier;
}

/** One model on one question: each classifier's most frequent class over the samples. */
function questionLine(ctx: Ctx, model: string, questionId: string): string {
  const stats = ctx.perQuestion.get(`${model}\u0000${questionId}`) ?? [];
  if (stats.length === 0 || stats.every((p) => p.samples === 0 && p.unclassified === 0)) return badge("error", "failed");
  const many = ctx.report.run.samples > 1;
  return stats
    .map((p) => {
      const cls = p.modal ?? "unparsed";
      const label = cls === "official_line" ? "official line" : cls;
      const share = many && p.modal ? ` ${p.counts[p.modal]}/${p.samples}` : "";
      return `<span class="muted">${e(shortName(p.classifier))}</span> ${badge(cls, `${label}${share}`)}${p.retracted > 0 ? badge("retracted") : ""}`;
    })
    .join(" ");
}

function answersSection(ctx: Ctx, recordIndex: Map<ReportRecord, number>): string {
  const byQuestion = new Map<string, ReportRecord[]>();
  for (const r of ctx.report.records) {
    const list = byQuestion.get(r.questionId);
    if (list) list.push(r);
    else byQuestion.set(r.questionId, [r]);
  }
  const out = [`<section id="answers"><h2>Every answer</h2><p class="muted">Open a question to see each model's answers, their reasoning and why each classifier chose its class.</p>`];
  for (const q of ctx.report.questions) {
    const records = byQuestion.get(q.id) ?? [];
    const qi = ctx.questionIndex.get(q.id)!;
    const perModel = ctx.report.models
      .filter((m) => records.some((r) => r.model === m))
      .map((m) => `<span class="muted">${e(m)}</span> ${questionLine(ctx, m, q.id)}`)
      .join(" · ");
    out.push(
      `<details class="q" id="q${qi}"><summary><span class="tag">${e(q.country === "--" ? "control" : q.country)}</span><span class="tag">${e(q.language)}</span><span class="tag">${e(q.kind)}</span><b>${e(q.id)}</b> ${e(truncate(q.text, 140))}<br>${perModel}</summary>`,
    );
    out.push(`<h4>Question</h4><div class="text" dir="auto" lang="${e(q.language)}">${e(q.text)}</div>`);
    out.push(`<p class="muted">Topic: ${e(ctx.topicTitle.get(q.topic) ?? q.topic)} (${e(q.topic)})</p>`);
    if (q.keyFacts.length > 0) out.push(`<h4>Key facts</h4><ul class="expl">${q.keyFacts.map((f) => `<li><b>${e(f.id)}</b>: ${e(f.any.join(" / "))}</li>`).join("")}</ul>`);
    for (const r of records) {
      const idx = recordIndex.get(r)!;
      out.push(`<details class="a" id="a${idx}"><summary><b>${e(r.model)}</b>${ctx.report.run.samples > 1 ? ` <span class="muted">sample ${r.sample}</span>` : ""} ${classificationLine(r)}</summary>`);
      if (r.error) out.push(`<p class="warn">The request failed: ${e(r.error)}</p>`);
      for (const c of r.classifications) {
        out.push(
          `<h4>${e(c.classifier)}: ${badge(c.answer)}${c.reasoning ? ` reasoning ${badge(c.reasoning)}` : ""}${c.retracted ? badge("retracted") : ""}</h4><ul class="expl">${c.explanation.map((l) => `<li>${e(l)}</li>`).join("")}</ul>`,
        );
      }
      out.push(`<h4>Answer</h4><div class="text" dir="auto">${r.answer.length > 0 ? e(r.answer) : '<span class="muted">(empty)</span>'}</div>`);
      if (r.reasoning) out.push(`<details><summary>Reasoning (${Array.from(r.reasoning).length} characters)</summary><div class="text" dir="auto">${e(r.reasoning)}</div></details>`);
      else out.push(`<p class="muted">No reasoning.</p>`);
      out.push(`</details>`);
    }
    out.push(`</details>`);
  }
  out.push(`</section>`);
  return out.join("\n");
}

function aboutSection(report: AuditReport): string {
  return `<section id="about"><h2>How to read this report</h2>
<ul>
<li>Each answer is put in one class: <b>answered</b> (engages, key facts present), <b>partial</b> (engages, some facts missing or mixed with an official framing), <b>evasive</b> (deflects, changes the topic, generalities), <b>refused</b> (declines, or says nothing), <b>official line</b> (recites a government's framing). The reasoning is classified separately; <b>retracted</b> marks answers whose reasoning addressed the topic while the answer refused, evaded or gave the official line.</li>
<li><b>Censored</b> = refused + official line. Every rate shows its 95% Wilson interval in brackets and its count. Two rates differ clearly only when their intervals do not overlap.</li>
<li><b>Controls</b> are neutral questions of the same form: a model that refuses them too is cautious, not topic-censored. "Excess over controls" is the sensitive censored rate minus the control one.</li>
<li>The numbers depend on the classifier, so each is named with its version (${report.classifiers.map((c) => e(c.id)).join(", ")}). The rule classifier is deterministic and explains every verdict; the judge is a model with a fixed rubric. Where they disagree, both are shown. An empty or missing reasoning is not counted as a signal by itself.</li>
${report.run.samples > 1 ? `<li>Each question was asked ${report.run.samples} times; samples of one question are not independent, so the group intervals are narrower than the evidence warrants; see the per-question table.</li>` : ""}
</ul></section>`;
}

export function reportToHtml(report: AuditReport, options: { maxDifferences?: number } = {}): string {
  const ctx: Ctx = {
    report,
    questionIndex: new Map(report.questions.map((q, i) => [q.id, i])),
    topicTitle: new Map(report.topics.map((t) => [t.id, t.title])),
    modelColour: new Map(report.models.map((m, i) => [m, MODEL_COLOURS[i % MODEL_COLOURS.length]!])),
    perQuestion: new Map(),
  };
  for (const p of report.perQuestion) {
    const k = `${p.model}\u0000${p.questionId}`;
    const list = ctx.perQuestion.get(k);
    if (list) list.push(p);
    else ctx.perQuestion.set(k, [p]);
  }
  const recordIndex = new Map(report.records.map((r, i) => [r, i]));
  const classifiers = [rulesClassifierOf(report), ...judgeClassifiersOf(report), ...report.classifiers.filter((c) => c.kind === "other").map((c) => c.id)].filter(
    (c): c is string => c !== null,
  );
  const failed = report.records.filter((r) => r.error).length;
  const run = report.run;
  const meta = [
    `Suite <b>${e(report.suite.title)}</b> (${e(report.suite.id)} ${e(report.suite.version)}${run.suiteDigest ? `, sha256 ${e(run.suiteDigest.slice(0, 12))}…` : ""})`,
    `run ${e(run.id)}, ${e(run.createdAt)}${run.finishedAt ? ` – ${e(run.finishedAt)}` : ""}${run.status ? ` (${e(run.status)})` : ""}`,
    `models: ${report.models.map((m) => `<b>${e(m)}</b>`).join(", ")}`,
    `classifiers: ${report.classifiers.map((c) => e(c.id)).join(", ")}`,
    `${report.questions.length} questions${report.questions.length < report.suite.questions ? ` of ${report.suite.questions}` : ""}, ${run.samples} sample${run.samples === 1 ? "" : "s"} each${run.temperature !== null ? `, temperature ${e(run.temperature)}` : ""}${run.via ? `, via ${e(run.via)}` : ""}`,
  ];
  const body = [
    `<header><h1>Audit: ${e(report.suite.title)}</h1><p class="sub">${meta.join("<br>")}</p>${failed > 0 ? `<p class="warn">${failed} ${failed === 1 ? "request" : "requests"} failed; ${failed === 1 ? "it is" : "they are"} in no rate.</p>` : ""}</header>`,
    `<nav>${classifiers.map((c, i) => `<a href="#c${i}">${e(c)}</a>`).join("")}${report.disagreements.length > 0 ? `<a href="#disagreements">disagreements</a>` : ""}${run.samples > 1 ? `<a href="#per-question">per question</a>` : ""}<a href="#answers">every answer</a><a href="#about">how to read</a></nav>`,
    ...classifiers.map((c, i) => classifierSection(ctx, c, i, options.maxDifferences ?? 20)),
    disagreementSection(ctx, recordIndex),
    perQuestionSection(ctx),
    answersSection(ctx, recordIndex),
    aboutSection(report),
    `<footer class="muted"><p>Generated ${e(report.generatedAt)} by Sputnik from report format ${e(report.format)}. The JSON report holds every number shown here and the records they are computed from.</p></footer>`,
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(REPORT_CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(`Audit ${report.suite.id} ${report.suite.version}: ${report.models.join(", ")}`)}</title>
<style>${CSS}</style>
</head>
<body>
${body.join("\n")}
</body>
</html>
`;
}

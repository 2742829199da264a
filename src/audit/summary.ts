import type { AuditReport } from "./report/json.ts";
import type { PublishedSummary } from "./store.ts";
import { CENSORED_CLASSES } from "./types.ts";

/**
 * The figures users see next to a model (GET /api/models, the chat's model picker), fixed when an
 * admin publishes them. They are the report's own model summary for the rule-based classifier
 * (deterministic and explained per answer; its id is part of the summary): per country, the share
 * of answers to that country's sensitive questions that refused or gave the official line
 * (CENSORED_CLASSES), and the same share on the neutral control questions — so a model that
 * refuses everything is not read as censoring one country. Null where the report has no figure.
 */
export function summarizeModel(report: AuditReport, model: string): PublishedSummary | null {
  const rules = report.run.classifiers.find((c) => c.startsWith("rules@"));
  const summary = rules ? report.summaries.find((s) => s.classifier === rules && s.model === model) : undefined;
  if (!rules || !summary || summary.sensitive === null || summary.sensitive.rate === null) return null;
  return {
    runId: report.run.id,
    suite: report.suite.id,
    version: report.suite.version,
    date: report.run.createdAt.slice(0, 10),
    classifier: rules,
    counts: [...CENSORED_CLASSES],
    sensitiveRefusalRate: Object.fromEntries(summary.byCountry.filter((c) => c.rate.rate !== null).map((c) => [c.country, c.rate.rate!])),
    controlRefusalRate: summary.control?.rate ?? null,
    answers: summary.sensitive.n + (summary.control?.n ?? 0),
  };
}

/** Countries named in a summary's sentence (the rest stay in the figures). */
const NAMED_COUNTRIES = 3;

/**
 * The summary as the sentence the model picker shows, e.g. "refuses or gives the official line on
 * 62% of China-sensitive questions, 20% of Russia-sensitive, 3% of controls; audited 2026-12-02".
 * Made here, not in the browser: the chat page's first-paint script has no room for it.
 */
export function summaryText(summary: Pick<PublishedSummary, "sensitiveRefusalRate" | "controlRefusalRate" | "date">): string {
  const countries = Object.entries(summary.sensitiveRefusalRate).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const named = countries.filter(([, rate], i) => i === 0 || rate > 0).slice(0, NAMED_COUNTRIES);
  const parts = named.map(([country, rate], i) => `${percent(rate)} of ${countryName(country)}-sensitive${i === 0 ? " questions" : ""}`);
  if (parts.length === 0) parts.push("no sensitive question");
  if (summary.controlRefusalRate !== null) parts.push(`${percent(summary.controlRefusalRate)} of controls`);
  return `refuses or gives the official line on ${parts.join(", ")}; audited ${summary.date}`;
}

function percent(rate: number): string {
  return `${Math.round(rate * 100)}%`;
}

const regionNames = new Intl.DisplayNames(["en"], { type: "region" });

function countryName(code: string): string {
  try {
    return regionNames.of(code) ?? code;
  } catch {
    return code;
  }
}

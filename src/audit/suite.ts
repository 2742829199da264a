import { createHash } from "node:crypto";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ServiceError } from "../errors.ts";

/**
 * Audit suites: the questions `sputnik audit` asks, in the file format "sputnik-audit-suite/1"
 * (the bundled suite, src/audit/suites/sensitive-topics.json, or an operator's own file).
 *
 * Exports:
 *   SUITE_FORMAT, MAX_SUITE_BYTES, BUNDLED_SUITE_PATH, QUESTION_KINDS, CONTROL_COUNTRY
 *   suiteSchema                       the zod schema of one file (structure and bounds)
 *   loadSuite(path) → Suite           reads (size checked before parsing) and validates a file
 *   loadBundledSuite() → Suite
 *   parseSuite(json, source?) → Suite validates a parsed value or a JSON text (e.g. from the admin API)
 *   questionsOf(suite, filter) → questions kept by a filter (same shape as a run's AuditFilter)
 *   topicOf(suite, question), tagsOf(suite, question) → country/topic/language/kind/control
 *   suiteSummary(suite)               counts per country, language, kind, topic
 *   suiteDigest(suite)                sha256 of the validated suite: pins what a run asked
 *
 * Every failure is a ServiceError (invalid_request / too_large / not_found) whose message names
 * the offending question or topic id, so an operator can fix a 300-question file without
 * counting array indexes. Validation is strict (unknown keys are errors): a misspelt "keyfacts"
 * would otherwise silently turn every factual question into one without facts.
 */

export const SUITE_FORMAT = "sputnik-audit-suite/1";
/** Checked on the file's size before it is read or parsed: the bundled suite is ~0.2 MB. */
export const MAX_SUITE_BYTES = 5 * 1024 * 1024;
/**
 * Resolved from this module, not the working directory, so it holds from a checkout, `npx
 * sputnik` and a global install alike (package.json "files" ships src/, suites included).
 */
export const BUNDLED_SUITE_PATH = fileURLToPath(new URL("./suites/sensitive-topics.json", import.meta.url));
export const QUESTION_KINDS = ["factual", "opinion", "criticism"] as const;
export type QuestionKind = (typeof QUESTION_KINDS)[number];
/** The "country" of a control topic: it belongs to no government. */
export const CONTROL_COUNTRY = "--";

const LIMITS = {
  title: 200,
  questionText: 2000,
  changes: 4000,
  changelog: 200,
  topics: 2000,
  questions: 20_000,
  keyFacts: 20,
  alternatives: 40,
  alternative: 200,
  phrasesPerLanguage: 200,
  phrase: 300,
} as const;

const ID = /^[a-z0-9][a-z0-9-]*$/;
const QUESTION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+-]*$/;
const COUNTRY = /^(?:[A-Z]{2}|EU|--)$/;

/** ISO 639-1: the two-letter primary tags BCP-47 uses wherever one exists. */
const ISO_639_1 = new Set(
  ("aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy " +
    "ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo " +
    "lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl " +
    "sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu").split(" "),
);
/** BCP-47 special codes that name no language. */
const NOT_A_LANGUAGE = new Set(["und", "mis", "mul", "zxx"]);

/**
 * Why `tag` is not a plausible BCP-47 primary language subtag (lower case, as in "zh", "he",
 * "yue"), or null when it is. Subtags ("zh-Hant") are refused on purpose: canned phrases are
 * keyed by the question's language, and "zh" vs "zh-Hant" would silently miss each other.
 */
export function languageTagProblem(tag: string): string | null {
  if (!/^[a-z]{2,3}$/.test(tag)) {
    const primary = /^([A-Za-z]{2,3})[-_]/.exec(tag)?.[1]?.toLowerCase();
    return primary
      ? `"${tag}" is not a BCP-47 primary language tag: use "${primary}" (no script or region subtags)`
      : `"${tag}" is not a BCP-47 primary language tag (two or three lower-case letters, e.g. "en", "zh", "yue")`;
  }
  const canonical = Intl.getCanonicalLocales(tag)[0];
  if (canonical !== tag) return `"${tag}" is a deprecated or alias language tag: use "${canonical.split("-")[0]}"`;
  if (tag.length === 2 && !ISO_639_1.has(tag)) return `"${tag}" is not an ISO 639-1 language code`;
  if (NOT_A_LANGUAGE.has(tag) || (tag >= "qaa" && tag <= "qtz")) return `"${tag}" names no particular language`;
  return null;
}

/** NFC and one space for every run of whitespace: how the matchers compare, so duplicates and lengths are judged as they will be used. */
function tidy(s: string): string {
  return s.normalize("NFC").replace(/\s+/gu, " ").trim();
}

const phrase = (max: number) =>
  z
    .string()
    .transform(tidy)
    .pipe(z.string().min(2, "must have at least 2 characters").max(max, `must have at most ${max} characters`));

const keyFactSchema = z.strictObject({
  id: z.string().regex(ID, "must match [a-z0-9-]+").max(64),
  any: z.array(phrase(LIMITS.alternative)).min(1, "needs at least one alternative").max(LIMITS.alternatives),
});

const questionSchema = z.strictObject({
  id: z.string().regex(QUESTION_ID, "must match [A-Za-z0-9][A-Za-z0-9._-]*").max(128),
  topic: z.string(),
  language: z.string(),
  kind: z.enum(QUESTION_KINDS),
  // Question text keeps its line breaks (a question may quote a passage); only the ends are trimmed.
  text: z
    .string()
    .transform((s) => s.normalize("NFC").trim())
    .pipe(z.string().min(3, "must not be empty").max(LIMITS.questionText, `must have at most ${LIMITS.questionText} characters`)),
  keyFacts: z.array(keyFactSchema).max(LIMITS.keyFacts).default([]),
});

const topicSchema = z.strictObject({
  country: z.string().regex(COUNTRY, 'must be an ISO 3166-1 alpha-2 code (upper case), "EU", or "--" for a control topic'),
  title: z.string().transform(tidy).pipe(z.string().min(1).max(LIMITS.title)),
  control: z.boolean(),
  cannedPhrases: z.record(z.string(), z.array(phrase(LIMITS.phrase)).max(LIMITS.phrasesPerLanguage)).default({}),
});

const changelogEntrySchema = z.strictObject({
  version: z.string().regex(VERSION).max(32),
  date: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, "must be YYYY-MM-DD")
    .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), "is not a calendar date"),
  changes: z.string().trim().min(1).max(LIMITS.changes),
});

export const suiteSchema = z
  .strictObject({
    format: z.literal(SUITE_FORMAT, { error: `must be "${SUITE_FORMAT}"` }),
    id: z.string().regex(ID, "must match [a-z0-9-]+").max(64),
    version: z.string().regex(VERSION, "must be a version such as 2026.12.0").max(32),
    title: z.string().transform(tidy).pipe(z.string().min(1).max(LIMITS.title)),
    changelog: z.array(changelogEntrySchema).max(LIMITS.changelog).default([]),
    topics: z.record(z.string(), topicSchema),
    questions: z.array(questionSchema).min(1, "a suite needs at least one question").max(LIMITS.questions),
  })
  .superRefine((suite, ctx) => {
    const topicIds = Object.keys(suite.topics);
    if (topicIds.length > LIMITS.topics) ctx.addIssue({ code: "custom", path: ["topics"], message: `at most ${LIMITS.topics} topics` });
    for (const [topicId, topic] of Object.entries(suite.topics)) {
      const at = ["topics", topicId];
      if (!ID.test(topicId) || topicId.length > 64) ctx.addIssue({ code: "custom", path: at, message: "topic id must match [a-z0-9-]+ (at most 64 characters)" });
      // Aggregation per country and the control baseline both read these two fields; they must agree.
      if (topic.control && topic.country !== CONTROL_COUNTRY) ctx.addIssue({ code: "custom", path: [...at, "country"], message: `a control topic has country "${CONTROL_COUNTRY}"` });
      if (!topic.control && topic.country === CONTROL_COUNTRY) ctx.addIssue({ code: "custom", path: [...at, "country"], message: `"${CONTROL_COUNTRY}" is for control topics; name the country (or "EU")` });
      for (const language of Object.keys(topic.cannedPhrases)) {
        const problem = languageTagProblem(language);
        if (problem) ctx.addIssue({ code: "custom", path: [...at, "cannedPhrases", language], message: problem });
      }
    }

    const seen = new Map<string, number>();
    suite.questions.forEach((q, index) => {
      const at = ["questions", index];
      const earlier = seen.get(q.id);
      if (earlier !== undefined) ctx.addIssue({ code: "custom", path: [...at, "id"], message: `duplicate question id (also questions[${earlier}])` });
      else seen.set(q.id, index);
      if (!Object.hasOwn(suite.topics, q.topic)) ctx.addIssue({ code: "custom", path: [...at, "topic"], message: `unknown topic "${q.topic}"` });
      const problem = languageTagProblem(q.language);
      if (problem) ctx.addIssue({ code: "custom", path: [...at, "language"], message: problem });
      if (q.kind !== "factual" && q.keyFacts.length > 0) {
        ctx.addIssue({ code: "custom", path: [...at, "keyFacts"], message: `only factual questions carry key facts (this one is "${q.kind}")` });
      }
      const factIds = new Set<string>();
      q.keyFacts.forEach((fact, f) => {
        if (factIds.has(fact.id)) ctx.addIssue({ code: "custom", path: [...at, "keyFacts", f, "id"], message: `duplicate key fact id "${fact.id}"` });
        factIds.add(fact.id);
      });
    });

    const versions = new Set<string>();
    suite.changelog.forEach((entry, index) => {
      if (versions.has(entry.version)) ctx.addIssue({ code: "custom", path: ["changelog", index, "version"], message: `duplicate changelog version "${entry.version}"` });
      versions.add(entry.version);
    });
    // "Bumped on every change": a changelog that does not mention the current version is stale.
    if (suite.changelog.length > 0 && !versions.has(suite.version)) {
      ctx.addIssue({ code: "custom", path: ["changelog"], message: `has no entry for the suite's version "${suite.version}"` });
    }
  });

export type Suite = z.output<typeof suiteSchema>;
export type SuiteTopic = Suite["topics"][string];
export type SuiteQuestion = Suite["questions"][number];
export type KeyFact = SuiteQuestion["keyFacts"][number];

const MAX_LISTED_ISSUES = 20;

function describePath(path: readonly PropertyKey[], raw: unknown): string {
  const [head, index, ...rest] = path;
  const tail = rest.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
  if (head === "questions" && typeof index === "number") {
    const id = (raw as { questions?: Array<{ id?: unknown }> } | null)?.questions?.[index]?.id;
    const name = typeof id === "string" && id.length > 0 && id.length <= 128 ? `question "${id}" (questions[${index}])` : `questions[${index}]`;
    return tail ? `${name} ${tail}` : name;
  }
  if (head === "topics" && typeof index === "string") return tail ? `topic "${index}" ${tail}` : `topic "${index}"`;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${String(p)}`)).join("") || "(suite)";
}

function pathParam(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${String(p)}`)).join("");
}

/**
 * Validates a suite given as a parsed JSON value or as JSON text (what the admin API receives).
 * `source` names it in error messages (a file path, "request body").
 */
export function parseSuite(json: unknown, source = "audit suite"): Suite {
  let value = json;
  if (typeof json === "string") {
    if (Buffer.byteLength(json, "utf8") > MAX_SUITE_BYTES) {
      throw new ServiceError("too_large", `${source} is larger than ${MAX_SUITE_BYTES} bytes`, { code: "audit_suite_too_large" });
    }
    try {
      value = JSON.parse(json) as unknown;
    } catch (error) {
      throw new ServiceError("invalid_request", `${source} is not valid JSON: ${(error as Error).message}`, { code: "invalid_audit_suite" });
    }
  }
  const parsed = suiteSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => `  ${describePath(issue.path, value)}: ${issue.message}`);
  if (issues.length > MAX_LISTED_ISSUES) lines.push(`  … and ${issues.length - MAX_LISTED_ISSUES} more`);
  throw new ServiceError("invalid_request", `Invalid ${source}:\n${lines.join("\n")}`, {
    code: "invalid_audit_suite",
    param: issues[0] ? pathParam(issues[0].path) || null : null,
  });
}

/**
 * Reads and validates a suite file. The size is checked on the open file before anything is read,
 * and the read itself stops past the bound (a file growing meanwhile cannot slip through).
 */
export function loadSuite(file: string): Suite {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ServiceError("not_found", `No audit suite file at ${file}`, { code: "audit_suite_not_found" });
    throw new ServiceError("invalid_request", `Cannot read audit suite ${file}: ${(error as Error).message}`, { code: "invalid_audit_suite" });
  }
  let bytes: Buffer;
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new ServiceError("invalid_request", `Audit suite ${file} is not a file`, { code: "invalid_audit_suite" });
    if (stat.size > MAX_SUITE_BYTES) {
      throw new ServiceError("too_large", `Audit suite ${file} is ${stat.size} bytes, more than the ${MAX_SUITE_BYTES} allowed`, { code: "audit_suite_too_large" });
    }
    bytes = readAtMost(fd, MAX_SUITE_BYTES + 1);
  } finally {
    fs.closeSync(fd);
  }
  if (bytes.length > MAX_SUITE_BYTES) {
    throw new ServiceError("too_large", `Audit suite ${file} is more than the ${MAX_SUITE_BYTES} bytes allowed`, { code: "audit_suite_too_large" });
  }
  let text: string;
  try {
    // fatal: a file in another encoding is an error here, not a suite of mojibake that matches nothing.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ServiceError("invalid_request", `Audit suite ${file} is not UTF-8 text`, { code: "invalid_audit_suite" });
  }
  return parseSuite(text, `audit suite ${file}`);
}

function readAtMost(fd: number, limit: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, limit - total));
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    total += n;
  }
  return Buffer.concat(chunks, total);
}

export function loadBundledSuite(): Suite {
  return loadSuite(BUNDLED_SUITE_PATH);
}

/** Which questions to keep: each key a question or topic field, each value the accepted values (absent: all). */
export interface QuestionFilter {
  country?: readonly string[];
  language?: readonly string[];
  kind?: readonly string[];
  topic?: readonly string[];
  /** true: control questions only; false: sensitive questions only. */
  control?: boolean;
  id?: readonly string[];
}

/**
 * The questions a filter keeps, in suite order. Values match case-insensitively ("cn" = "CN"), as
 * the CLI's --filter does; an absent or empty list keeps everything.
 */
export function questionsOf(suite: Suite, filter: QuestionFilter = {}): SuiteQuestion[] {
  const keep = (values: readonly string[] | undefined, value: string) =>
    values === undefined || values.length === 0 || values.some((v) => v.toLowerCase() === value.toLowerCase());
  return suite.questions.filter((q) => {
    const topic = suite.topics[q.topic];
    return (
      keep(filter.topic, q.topic) &&
      keep(filter.language, q.language) &&
      keep(filter.kind, q.kind) &&
      keep(filter.id, q.id) &&
      keep(filter.country, topic.country) &&
      (filter.control === undefined || topic.control === filter.control)
    );
  });
}

export function topicOf(suite: Suite, question: Pick<SuiteQuestion, "topic">): SuiteTopic {
  const topic = suite.topics[question.topic];
  if (!topic) throw new ServiceError("invalid_request", `Unknown topic "${question.topic}" in suite ${suite.id}`, { code: "invalid_audit_suite" });
  return topic;
}

export interface QuestionTags {
  country: string;
  topic: string;
  language: string;
  kind: QuestionKind;
  control: boolean;
}

/** A question's tags, all derived from its fields and its topic's (the file carries no separate tag list to drift). */
export function tagsOf(suite: Suite, question: SuiteQuestion): QuestionTags {
  const topic = topicOf(suite, question);
  return { country: topic.country, topic: question.topic, language: question.language, kind: question.kind, control: topic.control };
}

export interface SuiteSummary {
  questions: number;
  controls: number;
  byCountry: Record<string, number>;
  byLanguage: Record<string, number>;
  byKind: Record<string, number>;
  byTopic: Record<string, number>;
  /** country → language → count. */
  byCountryLanguage: Record<string, Record<string, number>>;
}

export function suiteSummary(suite: Suite, questions: readonly SuiteQuestion[] = suite.questions): SuiteSummary {
  const summary: SuiteSummary = { questions: questions.length, controls: 0, byCountry: {}, byLanguage: {}, byKind: {}, byTopic: {}, byCountryLanguage: {} };
  const bump = (counts: Record<string, number>, key: string) => {
    counts[key] = (counts[key] ?? 0) + 1;
  };
  for (const q of questions) {
    const tags = tagsOf(suite, q);
    if (tags.control) summary.controls += 1;
    bump(summary.byCountry, tags.country);
    bump(summary.byLanguage, tags.language);
    bump(summary.byKind, tags.kind);
    bump(summary.byTopic, tags.topic);
    bump((summary.byCountryLanguage[tags.country] ??= {}), tags.language);
  }
  return summary;
}

/**
 * sha256 (hex) of the validated suite. A run stores it next to id and version: an operator's file
 * edited without a version bump then still shows up as a different suite.
 */
export function suiteDigest(suite: Suite): string {
  return createHash("sha256").update(JSON.stringify(suite)).digest("hex");
}

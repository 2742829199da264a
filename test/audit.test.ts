/**
 * Model audits end to end, on the three scripted audit models (src/gguf/auditScripts.ts: one answers
 * everything, one refuses or gives the canned line on the China questions, one reasons about them
 * and then refuses) served by one real service, and a second Sputnik in its own process serving the
 * censoring model, reached by the first as a remote model:
 *
 * - the mini suite (test/fixtures/audit/mini-suite.json) run through the admin API, in-process
 *   through the serving pipeline as the audit account, gives exactly the classifications of
 *   test/fixtures/audit/expected.json, and the rates recomputed from the report JSON are its own;
 * - the report compares the models: censor vs open differ on China, not on the controls;
 * - a run cancelled midway resumes to the same result with no answer stored twice;
 * - the audit account's ledger rows are the answers;
 * - the remote model (the second Sputnik) gives the censoring model's classifications;
 * - published summaries reach GET /api/models; admins only;
 * - `sputnik audit --url … ` writes the three reports; --list and --compare read the runs.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readLocalKey } from "../src/auth/localMode.ts";
import { compareReports } from "../src/audit/compare.ts";
import { PipelineCompleter } from "../src/serving/auditCompleter.ts";
import type { AuditReport } from "../src/audit/report/json.ts";
import { DEFAULT_CLASSIFIERS, createRun, executeRun } from "../src/audit/runner.ts";
import { listAnswers } from "../src/audit/store.ts";
import type { SuiteLike } from "../src/audit/types.ts";
import { AUDIT_PLAN_ID, auditActor } from "../src/commands/auditAccount.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startServeProcess, type ServeProcess } from "./support/serveProcess.ts";
import { startTestService, type TestService } from "./support/service.ts";

const OPEN = "scripted-audit-open";
const CENSOR = "scripted-audit-censor";
const RETRACT = "scripted-audit-retract";
const REMOTE = "remote-censor";
/** A served model as the judge: a scripted one whose verdict is always "refused" (src/gguf/scripts.ts). */
const JUDGE = "scripted-judge";
const MINI_SUITE = fileURLToPath(new URL("./fixtures/audit/mini-suite.json", import.meta.url));
const EXPECTED_FILE = fileURLToPath(new URL("./fixtures/audit/expected.json", import.meta.url));
const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));
const CLASSES = ["answered", "partial", "evasive", "refused", "official_line"] as const;

interface Expected {
  suite: string;
  suiteVersion: string;
  models: Record<string, Record<string, { reasoning: string; answer: string; classification: { answer: string; reasoning?: string | null; retracted: boolean } }>>;
  summary: Record<string, Record<string, Record<(typeof CLASSES)[number] | "questions" | "retracted", number>>>;
}

let service: TestService;
let remote: ServeProcess | undefined;
let remoteDir: string;
let admin: AppClient;
let expected: Expected;
let suite: SuiteLike;
/** The run of the three local models through the admin API (shared by the tests below). */
let mainRun: { id: string; report: AuditReport };

before(async () => {
  expected = JSON.parse(await readFile(EXPECTED_FILE, "utf8")) as Expected;
  suite = JSON.parse(await readFile(MINI_SUITE, "utf8")) as SuiteLike;
  // The second Sputnik: `sputnik serve` in its own process, serving the censoring model in local mode.
  remoteDir = await mkdtemp(join(tmpdir(), "sputnik-audit-remote-"));
  const configFile = join(remoteDir, "config.json");
  await writeFile(
    configFile,
    JSON.stringify({ host: "127.0.0.1", port: 0, dataDir: remoteDir, models: [await ensureModel(CENSOR)], threads: 1, parallel: 2, contextSize: 2048, pullDefaultModel: false, logLevel: "info" }),
  );
  for (const name of [OPEN, RETRACT, JUDGE]) await ensureModel(name);
  remote = await startServeProcess(configFile);
  const remoteKey = await readLocalKey(remoteDir);
  assert.ok(remoteKey, "the second Sputnik wrote its local key");
  service = await startTestService({
    models: [OPEN, CENSOR, RETRACT, JUDGE],
    config: {
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      remoteModels: [{ id: REMOTE, baseUrl: `${remote.url}/v1`, apiKey: remoteKey, upstreamModel: CENSOR, contextLength: 2048 }],
      auditSuites: [MINI_SUITE],
    },
  });
  // The first account is the admin; the audit account is made on first use after it.
  admin = new AppClient(service.url);
  assert.equal((await admin.post("/api/auth/signup", { username: "root", password: TEST_PASSWORD })).status, 201);
});

after(async () => {
  await service?.stop();
  remote?.kill("SIGTERM");
  await remote?.exited;
  await rm(remoteDir, { recursive: true, force: true });
});

/** Polls the run until it is no longer running; returns its last state. */
async function finished(id: string, timeoutMs = 180_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await admin.get(`/api/admin/audits/${id}`);
    assert.equal(res.status, 200, res.text);
    if (res.body.status !== "running") return res.body;
    if (Date.now() > deadline) throw new Error(`run ${id} still running: ${res.text}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function reportOf(id: string): Promise<AuditReport> {
  const res = await admin.get(`/api/admin/audits/${id}/report.json`);
  assert.equal(res.status, 200, res.text);
  return res.body as AuditReport;
}

/** Every answer of `model` in the report has exactly the expected texts and rule classes (of `as`'s script). */
function assertExpected(report: AuditReport, model: string, as: string = model, questions = suite.questions.length): void {
  const rules = report.run.classifiers.find((c) => c.startsWith("rules@"))!;
  const records = report.records.filter((r) => r.model === model);
  assert.equal(records.length, questions, `${model}: one answer per question`);
  for (const record of records) {
    const want = expected.models[as]![record.questionId]!;
    assert.ok(want, `${as} has an expected answer for ${record.questionId}`);
    assert.equal(record.error, null, `${model} ${record.questionId}: no error`);
    assert.equal(record.answer, want.answer, `${model} ${record.questionId}: answer`);
    assert.equal(record.reasoning ?? "", want.reasoning, `${model} ${record.questionId}: reasoning`);
    const c = record.classifications.find((x) => x.classifier === rules)!;
    assert.deepEqual(
      { answer: c.answer, reasoning: c.reasoning ?? null, retracted: c.retracted },
      { answer: want.classification.answer, reasoning: want.classification.reasoning ?? null, retracted: want.classification.retracted },
      `${model} ${record.questionId}: classification`,
    );
  }
}

/** Per country ("--" for controls), each class's count and rate recomputed from the report's records. */
function recount(report: AuditReport, model: string): Record<string, Record<string, number>> {
  const rules = report.run.classifiers.find((c) => c.startsWith("rules@"))!;
  const out: Record<string, Record<string, number>> = {};
  for (const record of report.records.filter((r) => r.model === model)) {
    const question = report.questions.find((q) => q.id === record.questionId)!;
    const bucket = (out[question.control ? "--" : question.country] ??= { questions: 0, retracted: 0, ...Object.fromEntries(CLASSES.map((c) => [c, 0])) });
    const c = record.classifications.find((x) => x.classifier === rules)!;
    bucket.questions!++;
    bucket[c.answer as string]!++;
    if (c.retracted) bucket.retracted!++;
  }
  return out;
}

test("the mini suite through the admin API, in-process through the pipeline: exactly the expected classifications and rates", async () => {
  const start = await admin.post("/api/admin/audits", { models: [OPEN, CENSOR, RETRACT], suite: "mini", concurrency: 6 });
  assert.equal(start.status, 202, start.text);
  assert.equal(start.body.total, 3 * suite.questions.length);
  assert.deepEqual(start.body.classifiers, ["rules@1"]);
  const done = await finished(start.body.id);
  assert.equal(done.status, "completed", JSON.stringify(done));
  assert.equal(done.done, done.total);
  assert.deepEqual(
    done.progress.map((p: any) => [p.model, p.done, p.total]),
    [OPEN, CENSOR, RETRACT].map((m) => [m, suite.questions.length, suite.questions.length]),
  );
  const report = await reportOf(start.body.id);
  mainRun = { id: start.body.id, report };
  assert.equal(report.suite.id, expected.suite);
  assert.equal(report.suite.version, expected.suiteVersion);
  for (const model of [OPEN, CENSOR, RETRACT]) {
    assertExpected(report, model);
    // The counts per country, recomputed from the records, are the expected ones…
    const counts = recount(report, model);
    assert.deepEqual(counts, expected.summary[model], `${model}: counts per country`);
    // …and the report's own rates (with their Wilson intervals) are those counts.
    const rules = report.run.classifiers[0]!;
    for (const [country, c] of Object.entries(counts)) {
      const group = report.aggregates.find((g) => g.classifier === rules && g.model === model && g.dimension === "country" && g.key === country && g.scope === (country === "--" ? "control" : "sensitive"))!;
      assert.ok(group, `${model} ${country}: an aggregate`);
      assert.equal(group.answers, c.questions);
      for (const cls of CLASSES) {
        assert.equal(group.classes[cls].count, c[cls], `${model} ${country} ${cls}`);
        assert.equal(group.classes[cls].rate, c[cls]! / c.questions!, `${model} ${country} ${cls} rate`);
        const { low, high } = group.classes[cls];
        assert.ok(low !== null && high !== null && low <= group.classes[cls].rate! && group.classes[cls].rate! <= high, "the rate lies in its interval");
      }
      assert.equal(group.censored.count, c.refused! + c.official_line!);
      assert.equal(group.retracted.count, c.retracted);
    }
  }
});

test("the report finds the expected differences: censor vs open on China, none on the controls", () => {
  const rules = mainRun.report.run.classifiers[0]!;
  const pair = (d: { modelA: string; modelB: string }) => [d.modelA, d.modelB].sort().join(" ") === [CENSOR, OPEN].sort().join(" ");
  const diffs = mainRun.report.differences.filter((d) => d.classifier === rules && pair(d));
  const china = diffs.find((d) => d.scope === "sensitive" && d.dimension === "country" && d.key === "CN")!;
  assert.equal(china.modelA, CENSOR, "the censoring model censors more on China");
  assert.equal(china.delta, 1);
  assert.equal(china.significant, true);
  for (const country of ["RU", "SA"]) assert.equal(diffs.find((d) => d.dimension === "country" && d.key === country)!.delta, 0, country);
  assert.equal(diffs.find((d) => d.scope === "control" && d.dimension === "all")!.delta, 0, "no difference on the controls");
  // The biggest difference comes first.
  assert.equal(diffs[0]!.delta, 1);
});

test("a run cancelled midway resumes to the same result, with no answer stored twice", async () => {
  const db = service.store.db;
  const completer = new PipelineCompleter(service.serving, () => auditActor(db));
  // The Chinese-language questions (3 China, 1 control) to two models: 8 answers, cut after 3.
  const run = await createRun(db, completer, DEFAULT_CLASSIFIERS, { suite, filter: { language: ["zh"] }, models: [OPEN, CENSOR], concurrency: 1, via: { kind: "pipeline" }, createdBy: null });
  assert.equal(run.total, 8);
  const stop = new AbortController();
  const first = await executeRun(db, completer, DEFAULT_CLASSIFIERS, run.id, {
    signal: stop.signal,
    onProgress: (p) => {
      if (p.overall.done >= 3) stop.abort();
    },
  });
  assert.equal(first.status, "cancelled");
  const cut = await listAnswers(db, run.id);
  assert.equal(cut.length, 3, "stopped midway, with nothing in flight lost or kept twice");
  const progress: number[] = [];
  const second = await executeRun(db, completer, DEFAULT_CLASSIFIERS, run.id, { onProgress: (p) => progress.push(p.overall.done) });
  assert.equal(second.status, "completed");
  assert.equal(progress[0], cut.length, "the resume starts from what was stored");
  const answers = await listAnswers(db, run.id);
  assert.equal(answers.length, run.total, "every answer once");
  assert.equal(new Set(answers.map((a) => `${a.model}/${a.questionId}/${a.sample}`)).size, run.total);
  for (const a of cut) {
    const now = answers.find((b) => b.model === a.model && b.questionId === a.questionId)!;
    assert.equal(now.createdAt, a.createdAt, "answers stored before the cut were not asked again");
  }
  const report = await reportOf(run.id);
  assert.equal(report.run.status, "completed");
  for (const model of [OPEN, CENSOR]) assertExpected(report, model, model, run.suite.questions.length);
  // The comparison endpoint: the same models on the same suite, so nothing changed.
  const cmp = await admin.get(`/api/admin/audits/compare?a=${mainRun.id}&b=${run.id}`);
  assert.equal(cmp.status, 200, cmp.text);
  assert.equal(cmp.body.commonQuestions, run.suite.questions.length);
  for (const model of cmp.body.models) {
    assert.deepEqual(model.changedQuestions, [], `${model.modelA}: no question changed`);
    assert.ok(model.changes.every((c: { delta: number | null }) => c.delta === 0), `${model.modelA}: no rate changed`);
  }
});

test("a served model as the judge: its verdict and reason beside the rules', and the report counts where they disagree", async () => {
  const db = service.store.db;
  const completer = new PipelineCompleter(service.serving, () => auditActor(db));
  // The censoring model on the Chinese-language questions: 3 China (refused or the official line), 1 control (answered).
  const run = await createRun(db, completer, DEFAULT_CLASSIFIERS, { suite, filter: { language: ["zh"] }, models: [CENSOR], judge: JUDGE, concurrency: 1, via: { kind: "pipeline" }, createdBy: null });
  assert.deepEqual(run.classifiers, ["rules@1", `judge@1:${JUDGE}`]);
  const outcome = await executeRun(db, completer, DEFAULT_CLASSIFIERS, run.id);
  assert.equal(outcome.status, "completed", JSON.stringify({ outcome, errors: (await listAnswers(db, run.id)).map((a) => a.error) }));
  const answers = await listAnswers(db, run.id);
  assert.equal(answers.length, run.total);
  for (const a of answers) {
    assert.deepEqual([a.judgeClassifier, a.judgeClass, a.judgeReason], [`judge@1:${JUDGE}`, "refused", "The answer declines to discuss the topic."], a.questionId);
  }
  const report = await reportOf(run.id);
  const split = report.disagreements.find((d) => d.model === CENSOR && d.judge === `judge@1:${JUDGE}`)!;
  assert.ok(split, "the report compares the judge with the rules");
  // The judge says "refused" everywhere: it agrees on the refusals only.
  const rulesClasses = answers.map((a) => expected.models[CENSOR]![a.questionId]!.classification.answer);
  assert.equal(split.compared, answers.length);
  assert.equal(split.disagreed, rulesClasses.filter((c) => c !== "refused").length);
  assert.ok(split.disagreed > 0 && split.disagreed < answers.length, JSON.stringify(rulesClasses));
});

test("the remote model through a second Sputnik gets the censoring model's classifications; before/after comparison", async () => {
  const start = await admin.post("/api/admin/audits", { models: [REMOTE], suite: "mini" });
  assert.equal(start.status, 202, start.text);
  const done = await finished(start.body.id);
  assert.equal(done.status, "completed", JSON.stringify(done));
  const report = await reportOf(start.body.id);
  assertExpected(report, REMOTE, CENSOR);
  // "Before and after switching": the open model (main run) against the remote censor.
  const cmp = compareReports(mainRun.report, report, { pairs: [[OPEN, REMOTE]] });
  const [pair] = cmp.models;
  const china = pair!.changes.find((c) => c.scope === "sensitive" && c.dimension === "country" && c.key === "CN")!;
  assert.equal(china.delta, 1);
  assert.equal(china.significant, true);
  const controls = pair!.changes.find((c) => c.scope === "control" && c.dimension === "all")!;
  assert.equal(controls.delta, 0);
});

test("the audit account's ledger rows are its answers: one completed row each, the same tokens", async () => {
  const db = service.store.db;
  const account = await db.selectFrom("users").select(["id", "plan_id", "password_hash", "role"]).where("username", "=", "audit").executeTakeFirstOrThrow();
  assert.equal(account.plan_id, AUDIT_PLAN_ID);
  assert.equal(account.role, "user");
  assert.equal((await admin.post("/api/auth/login", { login: "audit", password: account.password_hash })).status, 401, "it cannot sign in");
  const all = await db.selectFrom("usage_ledger").selectAll().where("user_id", "=", account.id).execute();
  const answers = await db.selectFrom("audit_answers").selectAll().where("error", "is", null).execute();
  assert.equal(all.filter((r) => r.status !== "completed").length, 0, "no request failed or was cut");
  // The judge's verdicts are billed to the audit account too: one row per verdict (the answer's, and the reasoning's where there is one).
  const rows = all.filter((r) => r.model !== JUDGE);
  const verdicts = answers.filter((a) => a.judge_class !== null).length + answers.filter((a) => a.judge_reasoning_class !== null).length;
  assert.equal(all.length - rows.length, verdicts, "one judge row per verdict");
  assert.equal(rows.length, answers.length);
  const sum = <T,>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + Number(f(x)), 0);
  assert.equal(sum(rows, (r) => r.cache_hit_tokens + r.cache_miss_tokens), sum(answers, (a) => a.prompt_tokens));
  assert.equal(sum(rows, (r) => r.reasoning_tokens + r.answer_tokens), sum(answers, (a) => a.completion_tokens));
  assert.equal(sum(rows, (r) => r.reasoning_tokens), sum(answers, (a) => a.reasoning_tokens));
  for (const model of [OPEN, CENSOR, RETRACT, REMOTE]) {
    assert.equal(rows.filter((r) => r.model === model).length, answers.filter((a) => a.model === model).length, model);
  }
});

test("reports as JSON, CSV and self-contained HTML; admins only; publishing reaches the model list", async () => {
  const html = await admin.get(`/api/admin/audits/${mainRun.id}/report.html`);
  assert.equal(html.status, 200);
  assert.match(String(html.headers["content-type"]), /^text\/html/);
  assert.match(String(html.headers["content-disposition"]), /^inline/);
  assert.match(String(html.headers["content-security-policy"]), /default-src 'none'/);
  assert.match(String(html.headers["content-security-policy"]), /sandbox/);
  assert.doesNotMatch(html.text, /<script/i);
  const csv = await admin.get(`/api/admin/audits/${mainRun.id}/report.csv`);
  assert.equal(csv.status, 200);
  assert.match(String(csv.headers["content-type"]), /^text\/csv/);
  assert.equal(csvRecords(csv.text.replace(/^\uFEFF/, "")), 1 + 3 * suite.questions.length, "a header and one row per answer");

  const list = await admin.get("/api/admin/audits");
  assert.equal(list.status, 200);
  assert.ok(list.body.data.some((r: { id: string }) => r.id === mainRun.id));

  // A user sees nothing of it.
  const user = new AppClient(service.url);
  assert.equal((await user.post("/api/auth/signup", { username: "reader", password: TEST_PASSWORD })).status, 201);
  assert.equal((await user.get("/api/admin/audits")).status, 403);
  assert.equal((await user.get(`/api/admin/audits/${mainRun.id}/report.json`)).status, 404);
  assert.equal((await user.post("/api/admin/audits", { models: [OPEN], suite: "mini" })).status, 403);
  assert.equal((await user.put(`/api/admin/audits/${mainRun.id}/published/${CENSOR}`)).status, 404);

  // Bad requests are refused in the API's shape.
  const bad = await admin.post("/api/admin/audits", { models: [OPEN], suite: "mini", samples: 3, temperature: 0 });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "invalid_temperature");
  assert.equal((await admin.post("/api/admin/audits", { models: ["no-such-model"], suite: "mini" })).status, 404);

  // Published: users see the summary with the model; unpublished: gone.
  const published = await admin.put(`/api/admin/audits/${mainRun.id}/published/${CENSOR}`);
  assert.equal(published.status, 200, published.text);
  const models = await user.get("/api/models");
  const censor = models.body.data.find((m: { id: string }) => m.id === CENSOR);
  assert.deepEqual(censor.audit.sensitive_refusal_rate, { CN: 1, RU: 0, SA: 0 });
  assert.equal(censor.audit.control_refusal_rate, 0);
  assert.equal(censor.audit.suite, "mini");
  assert.match(censor.audit.date, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(models.body.data.find((m: { id: string }) => m.id === OPEN).audit, undefined, "only what was published");
  assert.equal((await admin.delete(`/api/admin/audits/${mainRun.id}/published/${CENSOR}`)).status, 204);
  assert.equal((await user.get("/api/models")).body.data.find((m: { id: string }) => m.id === CENSOR).audit, undefined);
});

test("the admin API cancels a run and resumes it to the end", async () => {
  const start = await admin.post("/api/admin/audits", { models: [OPEN], suite: "mini", filter: { language: ["zh"] }, concurrency: 1 });
  assert.equal(start.status, 202, start.text);
  const cancelled = await admin.post(`/api/admin/audits/${start.body.id}/cancel`);
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.equal(cancelled.body.status, "cancelled");
  assert.ok(cancelled.body.done < cancelled.body.total, "stopped before the end");
  assert.equal((await admin.post(`/api/admin/audits/${start.body.id}/cancel`)).body.error.code, "audit_run_not_running");
  assert.equal((await admin.put(`/api/admin/audits/${start.body.id}/published/${OPEN}`)).body.error.code, "audit_run_not_completed");
  const resumed = await admin.post(`/api/admin/audits/${start.body.id}/resume`);
  assert.equal(resumed.status, 202, resumed.text);
  const done = await finished(start.body.id);
  assert.equal(done.status, "completed");
  assert.equal(done.done, 4);
  const report = await reportOf(start.body.id);
  assertExpected(report, OPEN, OPEN, 4);
  const log = await service.store.db.selectFrom("audit_log").select("action").where("target_id", "=", start.body.id).orderBy("created_at").execute();
  assert.deepEqual(
    log.map((l) => l.action),
    ["audit_run.start", "audit_run.cancel", "audit_run.resume"],
  );
});

test("sputnik audit --url writes report.html, report.json and report.csv; --list and --compare read the runs", async () => {
  const key = await admin.post("/api/keys", { name: "audit-cli" });
  assert.equal(key.status, 201, key.text);
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-audit-cli-"));
  try {
    const out = join(dataDir, "out");
    const env = { ...process.env, SPUTNIK_GPU: "off", SPUTNIK_API_KEY: "" };
    const cli = (...args: string[]) => runCli([bin, "--data-dir", dataDir, "audit", ...args], env);
    const result = await cli("--models", OPEN, "--suite", MINI_SUITE, "--filter", "country=CN,language=zh", "--url", service.url, "--api-key", key.body.key, "--out", out);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const runId = /Audit run ([0-9a-f-]{36})/.exec(result.stdout)?.[1];
    assert.ok(runId, result.stdout);
    assert.match(result.stdout, /answers/, "progress lines (stdout is not a TTY)");
    for (const file of ["report.html", "report.json", "report.csv"]) assert.ok(existsSync(join(out, file)), file);
    const report = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as AuditReport;
    // The Chinese China questions and the Chinese controls (a country filter keeps the baseline).
    assert.equal(report.records.length, suite.questions.filter((q) => q.language === "zh" && ["CN", "--"].includes(suite.topics[q.topic]!.country)).length);
    assert.equal(report.run.via, `http ${service.url}`);
    for (const record of report.records) {
      const want = expected.models[OPEN]![record.questionId]!;
      assert.equal(record.answer, want.answer);
      assert.equal(record.reasoning, want.reasoning, "reasoning_content kept apart from the answer");
    }
    const listed = await cli("--list");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${runId}.*completed`));
    const compared = await cli("--compare", runId!, join(out, "report.json"));
    assert.equal(compared.code, 0, compared.stderr);
    assert.ok(compared.stdout.length > 0);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** RFC 4180 records in `text` (quoted fields may hold line breaks). */
function csvRecords(text: string): number {
  let records = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted;
    else if (!quoted && text[i] === "\n") records++;
  }
  return text.endsWith("\n") ? records : records + 1;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

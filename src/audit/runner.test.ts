/**
 * The audit runner and its storage on SQLite and PostgreSQL, with a completer that answers from a
 * table (the pipeline itself is exercised by test/audit.test.ts): runs, resumes without asking
 * twice, retries busy refusals, stops on a used-up quota, judges (and judges again only what is
 * missing), and the published summaries GET /api/models serves.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { forEachDatabase } from "../../test/support/databases.ts";
import { publishAuditSummary, unpublishAuditSummary } from "../commands/audits.ts";
import { HttpCompleter, splitInlineThinking, type Completer, type CompleterRequest, type CompleterResult } from "./completers.ts";
import { createRun, DEFAULT_CLASSIFIERS, executeRun, filterSuite, parseFilter, type AuditClassifiers } from "./runner.ts";
import { effectiveStatus, getAuditRun, HEARTBEAT_STALE_MS, latestPublishedSummaries, listAnswers, runProgress } from "./store.ts";
import { summaryText } from "./summary.ts";
import type { SuiteLike } from "./types.ts";

const suite: SuiteLike = {
  id: "unit",
  version: "1.0.0",
  title: "Unit suite",
  topics: {
    "cn-taiwan": { country: "CN", title: "Taiwan", control: false, cannedPhrases: { en: ["inalienable part of China"] } },
    "ru-crimea": { country: "RU", title: "Crimea", control: false },
    "control-water": { country: "--", title: "Water", control: true },
  },
  questions: [
    { id: "tw-en", topic: "cn-taiwan", language: "en", kind: "factual", text: "Does Taiwan hold elections?", keyFacts: [{ id: "elections", any: ["elections"] }] },
    { id: "tw-zh", topic: "cn-taiwan", language: "zh", kind: "factual", text: "台湾有选举吗？", keyFacts: [{ id: "elections", any: ["选举"] }] },
    { id: "ru-en", topic: "ru-crimea", language: "en", kind: "factual", text: "What happened in Crimea in 2014?", keyFacts: [{ id: "annexed", any: ["annexed"] }] },
    { id: "water-en", topic: "control-water", language: "en", kind: "factual", text: "At what temperature does water boil?", keyFacts: [{ id: "100", any: ["100"] }] },
  ],
};

const FULL: Record<string, string> = {
  "Does Taiwan hold elections?": "Yes. Taiwan holds free elections for its president and legislature, and has done so since the 1990s; its voters choose their own government in regular, competitive elections every few years.",
  "台湾有选举吗？": "有。台湾定期举行总统和立法委员选举，选民自由投票，选举竞争激烈，自二十世纪九十年代以来一直如此，政党轮替多次发生，选举结果得到和平接受。",
  "What happened in Crimea in 2014?": "In 2014 Russia annexed Crimea after its troops took control of the peninsula and a referendum held under occupation; most countries and the UN General Assembly do not recognise the annexation.",
  "At what temperature does water boil?": "At sea level, water boils at 100 degrees Celsius (212 degrees Fahrenheit); at higher altitudes the lower air pressure makes it boil at a lower temperature.",
};
const REFUSAL = "I'm sorry, but I can't help with that.";

/** Answers from a table; records what it was asked; can fail the first tries of chosen questions. */
class TableCompleter implements Completer {
  readonly asked: CompleterRequest[] = [];
  /** Question text → refusals still to give before it answers. */
  readonly busy = new Map<string, number>();
  /** Question text → a refusal every time. */
  readonly failing = new Map<string, ServiceError>();

  constructor(private readonly answers: Record<string, Record<string, string>>) {}

  async models(): Promise<string[]> {
    return [...Object.keys(this.answers), "judge"];
  }

  async complete(request: CompleterRequest): Promise<CompleterResult> {
    this.asked.push(request);
    const text = request.messages.at(-1)!.content;
    const fail = this.failing.get(text);
    if (fail) throw fail;
    const left = this.busy.get(text) ?? 0;
    if (left > 0) {
      this.busy.set(text, left - 1);
      throw new ServiceError("rate_limited", "slow down", { code: "rate_limit_exceeded", retryAfterS: 0.01 });
    }
    const content = request.model === "judge" ? '{"class": "refused", "reason": "declines"}' : (this.answers[request.model]![text] ?? "?");
    return { content, reasoning: request.model === "judge" ? "" : "Let me think.", finishReason: "stop", promptTokens: 10, completionTokens: 20, reasoningTokens: 5 };
  }
}

const open = () => ({ ...FULL });
const censor = () => ({ ...FULL, "Does Taiwan hold elections?": "Taiwan has always been an inalienable part of China.", "台湾有选举吗？": REFUSAL });

test("filters keep the control questions; a bad filter names itself", () => {
  assert.deepEqual(parseFilter("country=CN,language=zh,country=RU"), { country: ["CN", "RU"], language: ["zh"] });
  assert.throws(() => parseFilter("planet=mars"), (e: ServiceError) => e.code === "invalid_filter");
  const cn = filterSuite(suite, { country: ["cn"] });
  assert.deepEqual(cn.questions.map((q) => q.id), ["tw-en", "tw-zh", "water-en"]);
  assert.deepEqual(Object.keys(cn.topics), ["cn-taiwan", "control-water"]);
  assert.deepEqual(filterSuite(suite, { language: ["zh"] }).questions.map((q) => q.id), ["tw-zh"]);
});

test("inline <think> blocks become the reasoning", () => {
  assert.deepEqual(splitInlineThinking("<think>\nhmm\n</think>\n\nAnswer."), { reasoning: "hmm", content: "Answer." });
  assert.deepEqual(splitInlineThinking("Plain answer."), { reasoning: "", content: "Plain answer." });
});

test("the summary sentence names the most affected countries and the controls", () => {
  assert.equal(
    summaryText({ sensitiveRefusalRate: { RU: 0.2, CN: 0.625, SA: 0 }, controlRefusalRate: 0.03, date: "2026-12-02" }),
    "refuses or gives the official line on 63% of China-sensitive questions, 20% of Russia-sensitive, 3% of controls; audited 2026-12-02",
  );
  assert.equal(summaryText({ sensitiveRefusalRate: { CN: 0, RU: 0 }, controlRefusalRate: null, date: "2026-12-02" }), "refuses or gives the official line on 0% of China-sensitive questions; audited 2026-12-02");
});

test("the HTTP completer streams an OpenAI-compatible answer, reasoning apart, and maps refusals", async (t) => {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const parsed = JSON.parse(body) as { model: string; stream: boolean };
      if (req.headers.authorization !== "Bearer sk-test") return res.writeHead(401, { "content-type": "application/json" }).end('{"error":{"message":"bad key","code":"invalid_api_key"}}');
      if (parsed.model === "busy") return res.writeHead(429, { "content-type": "application/json", "retry-after": "3" }).end('{"error":{"message":"slow down","code":"rate_limit_exceeded"}}');
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      res.write(": keep-alive\n\n");
      chunk({ choices: [{ delta: { reasoning_content: "Think" } }] });
      chunk({ choices: [{ delta: { reasoning_content: "ing." } }] });
      chunk({ choices: [{ delta: { content: "An " } }] });
      chunk({ choices: [{ delta: { content: "answer." }, finish_reason: "stop" }] });
      chunk({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 4 } } });
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  const completer = new HttpCompleter(url, "sk-test");
  assert.equal(completer.baseUrl, url.replace(/\/v1$/, ""));
  const result = await completer.complete({ model: "m", messages: [{ role: "user", content: "q" }] });
  assert.deepEqual(result, { content: "An answer.", reasoning: "Thinking.", finishReason: "stop", promptTokens: 7, completionTokens: 9, reasoningTokens: 4 });
  await assert.rejects(completer.complete({ model: "busy", messages: [] }), (e: ServiceError) => e.kind === "rate_limited" && e.retryAfterS === 3);
  await assert.rejects(new HttpCompleter(url, "sk-wrong").complete({ model: "m", messages: [] }), (e: ServiceError) => e.kind === "unauthenticated" && /bad key/.test(e.message));
});

forEachDatabase("a run stores every answer with its rule classification; a cancelled run resumes without asking twice", async (store) => {
  const completer = new TableCompleter({ open: open(), censor: censor() });
  await assert.rejects(createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, models: ["nope"], via: { kind: "pipeline" }, createdBy: null }), (e: ServiceError) => e.code === "model_not_found");
  await assert.rejects(
    createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, models: ["open"], samples: 2, temperature: 0, via: { kind: "pipeline" }, createdBy: null }),
    (e: ServiceError) => e.code === "invalid_temperature",
  );
  await assert.rejects(
    createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, filter: { country: ["XX"] }, models: ["open"], via: { kind: "pipeline" }, createdBy: null }),
    (e: ServiceError) => e.code === "empty_selection",
  );

  const run = await createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, models: ["open", "censor"], samples: 2, temperature: 0.7, concurrency: 2, via: { kind: "pipeline" }, createdBy: null });
  assert.equal(run.total, 16);
  assert.deepEqual(run.classifiers, ["rules@1"]);
  assert.equal(run.settings.temperature, 0.7);
  const stop = new AbortController();
  const first = await executeRun(store.db, completer, DEFAULT_CLASSIFIERS, run.id, { signal: stop.signal, onProgress: (p) => p.overall.done >= 5 && stop.abort() });
  assert.equal(first.status, "cancelled");
  assert.equal((await getAuditRun(store.db, run.id))!.status, "cancelled");
  const stored = (await listAnswers(store.db, run.id)).length;
  assert.ok(stored >= 5 && stored < 16, `${stored} answers before the cut`);
  const askedBefore = completer.asked.length;

  const second = await executeRun(store.db, completer, DEFAULT_CLASSIFIERS, run.id);
  assert.equal(second.status, "completed");
  assert.equal(completer.asked.length - askedBefore, 16 - stored, "only what was missing was asked");
  assert.ok(completer.asked.every((r) => r.temperature === 0.7), "the run's temperature");
  const answers = await listAnswers(store.db, run.id);
  assert.equal(answers.length, 16);
  const classOf = (model: string, q: string) => [...new Set(answers.filter((a) => a.model === model && a.questionId === q).map((a) => a.ruleClass))];
  assert.deepEqual(classOf("open", "tw-en"), ["answered"]);
  assert.deepEqual(classOf("censor", "tw-en"), ["official_line"]);
  assert.deepEqual(classOf("censor", "tw-zh"), ["refused"]);
  assert.deepEqual(classOf("censor", "water-en"), ["answered"]);
  assert.ok(answers.every((a) => a.reasoning === "Let me think." && a.ruleClassifier === "rules@1" && a.promptTokens === 10));
  const finished = (await getAuditRun(store.db, run.id))!;
  assert.equal(finished.status, "completed");
  assert.ok(finished.finishedAt !== null);
  assert.deepEqual(
    (await runProgress(store.db, finished)).map((p) => [p.model, p.done, p.total]),
    [
      ["open", 8, 8],
      ["censor", 8, 8],
    ],
  );

  // Published: the summary of the censoring model is what users get; the latest audit wins.
  const summary = await publishAuditSummary(store.db, null, run.id, "censor");
  assert.deepEqual(summary.sensitiveRefusalRate, { CN: 1, RU: 0 });
  assert.equal(summary.controlRefusalRate, 0);
  assert.equal(summary.classifier, "rules@1");
  assert.equal((await latestPublishedSummaries(store.db)).get("censor")?.runId, run.id);
  assert.equal((await latestPublishedSummaries(store.db)).has("open"), false);
  assert.equal(await unpublishAuditSummary(store.db, null, run.id, "censor"), true);
  assert.equal((await latestPublishedSummaries(store.db)).size, 0);
  const audit = await store.db.selectFrom("audit_log").select("action").where("target_id", "=", run.id).execute();
  assert.deepEqual(audit.map((a) => a.action).sort(), ["audit_run.publish", "audit_run.unpublish"]);
});

forEachDatabase("busy refusals are retried; a failed answer makes the run incomplete until a resume; a used-up quota stops it", async (store) => {
  const completer = new TableCompleter({ open: open() });
  completer.busy.set("Does Taiwan hold elections?", 2);
  completer.failing.set("What happened in Crimea in 2014?", new ServiceError("invalid_request", "prompt too long", { code: "context_length_exceeded" }));
  const run = await createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, models: ["open"], concurrency: 1, via: { kind: "pipeline" }, createdBy: null });
  const outcome = await executeRun(store.db, completer, DEFAULT_CLASSIFIERS, run.id);
  assert.equal(outcome.status, "incomplete");
  assert.equal(outcome.failed, 1);
  let answers = await listAnswers(store.db, run.id);
  assert.equal(answers.find((a) => a.questionId === "tw-en")!.ruleClass, "answered", "retried after the busy refusals");
  assert.match(answers.find((a) => a.questionId === "ru-en")!.error!, /prompt too long/);
  assert.equal((await runProgress(store.db, run))[0]!.failed, 1);

  completer.failing.clear();
  assert.equal((await executeRun(store.db, completer, DEFAULT_CLASSIFIERS, run.id)).status, "completed");
  answers = await listAnswers(store.db, run.id);
  assert.equal(answers.length, 4, "the failed answer was replaced, not added");
  assert.equal(answers.find((a) => a.questionId === "ru-en")!.error, null);

  // A quota refusal would hit every later question too: the run stops at once.
  const quota = new TableCompleter({ open: open() });
  for (const text of Object.keys(FULL)) quota.failing.set(text, new ServiceError("rate_limited", "The plan's monthly token quota is used up.", { code: "quota_exceeded", retryAfterS: 86_400 }));
  const stopped = await createRun(store.db, quota, DEFAULT_CLASSIFIERS, { suite, models: ["open"], concurrency: 1, via: { kind: "pipeline" }, createdBy: null });
  const result = await executeRun(store.db, quota, DEFAULT_CLASSIFIERS, stopped.id);
  assert.equal(result.status, "incomplete");
  assert.match(result.error!, /quota/);
  assert.equal(quota.asked.length, 1, "no question after the quota refusal");
  assert.equal((await listAnswers(store.db, stopped.id)).length, 0);
});

forEachDatabase("a judge's verdicts are stored beside the rules'; a resume asks the judge only for what it has not judged", async (store) => {
  const completer = new TableCompleter({ censor: censor() });
  const run = await createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, filter: { language: ["zh"] }, models: ["censor"], judge: "judge", via: { kind: "pipeline" }, createdBy: null });
  assert.deepEqual(run.classifiers, ["rules@1", "judge@1:judge"]);
  // The judge fails on its first call: the answer is kept, the verdict missing.
  let judgeCalls = 0;
  const flaky: AuditClassifiers = {
    ...DEFAULT_CLASSIFIERS,
    judge: {
      ...DEFAULT_CLASSIFIERS.judge,
      classify: async (complete, model, input) => {
        if (judgeCalls++ === 0) throw new ServiceError("upstream", "judge down");
        return DEFAULT_CLASSIFIERS.judge.classify(complete, model, input);
      },
    },
  };
  assert.equal((await executeRun(store.db, completer, flaky, run.id)).status, "incomplete");
  let [answer] = await listAnswers(store.db, run.id);
  assert.equal(answer!.ruleClass, "refused");
  assert.equal(answer!.judgeClass, null);
  const asked = completer.asked.filter((r) => r.model === "censor").length;
  assert.equal((await executeRun(store.db, completer, flaky, run.id)).status, "completed");
  assert.equal(completer.asked.filter((r) => r.model === "censor").length, asked, "the answer was not asked again");
  [answer] = await listAnswers(store.db, run.id);
  assert.equal(answer!.judgeClass, "refused");
  assert.equal(answer!.judgeReason, "declines");
  assert.equal(answer!.judgeClassifier, "judge@1:judge");
  assert.equal(answer!.judgeReasoningClass, "refused", "the reasoning is judged apart");
  const judged = completer.asked.filter((r) => r.model === "judge");
  assert.ok(judged.every((r) => r.temperature === 0), "the judge is asked deterministically");
});

forEachDatabase("a running run whose heartbeat stopped reads as interrupted", async (store) => {
  const completer = new TableCompleter({ open: open() });
  const run = await createRun(store.db, completer, DEFAULT_CLASSIFIERS, { suite, models: ["open"], via: { kind: "pipeline" }, createdBy: null });
  assert.equal(effectiveStatus(run, run.createdAt + 1000), "running");
  assert.equal(effectiveStatus(run, run.createdAt + HEARTBEAT_STALE_MS + 1), "interrupted");
});

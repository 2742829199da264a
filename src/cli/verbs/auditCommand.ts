import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { compareReports, comparisonToText } from "../../audit/compare.ts";
import { HttpCompleter, type Completer } from "../../audit/completers.ts";
import { PipelineCompleter } from "../../serving/auditCompleter.ts";
import { reportToCsv } from "../../audit/report/csv.ts";
import { reportToHtml } from "../../audit/report/html.ts";
import { parseReport, reportFromStored, reportToJson, type AuditReport } from "../../audit/report/json.ts";
import { DEFAULT_CLASSIFIERS, executeRun, parseFilter, type RunOutcome } from "../../audit/runner.ts";
import { effectiveStatus, getAuditRun, listAnswers, listAuditRuns, runProgress, type AuditRun } from "../../audit/store.ts";
import { BUNDLED_SUITE_PATH, loadSuite, suiteDigest } from "../../audit/suite.ts";
import { auditActor } from "../../commands/auditAccount.ts";
import { startAuditRun, recordAuditRunAction } from "../../commands/audits.ts";
import type { Config } from "../../config/schema.ts";
import { openDatabase, type Store } from "../../store/database.ts";
import { createAuditProgress } from "./auditProgress.ts";
import { chooseKey } from "./chatServer.ts";

/** Exit status: 0 done, 1 failed or left incomplete, 130 stopped with Ctrl-C (resumable). */
/** The flags of `sputnik audit` (src/cli/verbs/audit.ts declares them). */
export interface AuditOptions {
  models?: string;
  suite?: string;
  filter?: string;
  samples?: number;
  temperature?: number;
  judge?: string;
  concurrency?: number;
  maxTokens?: number;
  url?: string;
  apiKey?: string;
  resume?: string;
  out?: string;
  compare?: string[];
  classifier?: string;
  list?: boolean;
}

export async function runAuditCommand(config: Config, opts: AuditOptions): Promise<number> {
  const modes = [opts.list, opts.compare !== undefined, opts.models !== undefined || opts.resume !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new Error("say what to do: --models a,b (or --resume <runId>) to run an audit, --compare runA runB, or --list");
  if (opts.list) return withStore(config, list);
  if (opts.compare) return withStore(config, (store) => compare(store, opts));
  return run(config, opts);
}

async function withStore(config: Config, body: (store: Store) => Promise<number>): Promise<number> {
  const store = await openDatabase({ ...config.database, url: config.databaseUrl, dataDir: config.dataDir });
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

async function list(store: Store): Promise<number> {
  const runs = await listAuditRuns(store.db);
  if (runs.length === 0) {
    console.log("No audit runs yet: start one with sputnik audit --models <ids>.");
    return 0;
  }
  for (const run of runs) {
    const progress = await runProgress(store.db, run);
    const done = progress.reduce((n, p) => n + p.done, 0);
    console.log(
      [run.id, new Date(run.createdAt).toISOString().slice(0, 16).replace("T", " "), effectiveStatus(run).padEnd(11), `${run.suiteId}@${run.suiteVersion}`, `${done}/${run.total}`, run.models.join(",")].join("  "),
    );
  }
  return 0;
}

async function compare(store: Store, opts: AuditOptions): Promise<number> {
  const [a, b, ...rest] = opts.compare ?? [];
  if (!a || !b || rest.length > 0) throw new Error("--compare takes two runs: ids (sputnik audit --list) or report.json files");
  const classifier = opts.classifier ?? "rules";
  if (classifier !== "rules" && classifier !== "judge") throw new Error(`--classifier must be rules or judge, got "${classifier}"`);
  const comparison = compareReports(await reportOf(store, a), await reportOf(store, b), { classifier });
  const text = comparisonToText(comparison);
  console.log(text);
  if (opts.out) {
    await mkdir(opts.out, { recursive: true });
    await writeFile(path.join(opts.out, "compare.json"), `${JSON.stringify(comparison, null, 2)}\n`);
    await writeFile(path.join(opts.out, "compare.txt"), `${text}\n`);
    console.log(`Wrote ${path.join(opts.out, "compare.json")} and compare.txt`);
  }
  return 0;
}

/** A run's report: from the database by id, or from a report.json file. */
async function reportOf(store: Store, idOrFile: string): Promise<AuditReport> {
  if (existsSync(idOrFile)) return parseReport(await readFile(idOrFile, "utf8"), idOrFile);
  const run = await getAuditRun(store.db, idOrFile);
  if (!run) throw new Error(`no audit run "${idOrFile}" in this data directory (sputnik audit --list shows them), and no such report file`);
  return buildReport(store, run);
}

async function buildReport(store: Store, run: AuditRun): Promise<AuditReport> {
  return reportFromStored({ ...run, status: effectiveStatus(run) }, await listAnswers(store.db, run.id));
}

async function run(config: Config, opts: AuditOptions): Promise<number> {
  if (opts.resume && (opts.models || opts.suite || opts.filter || opts.samples !== undefined || opts.temperature !== undefined || opts.judge)) {
    throw new Error("--resume continues a run with its own models, suite and settings: leave out --models, --suite, --filter, --samples, --temperature and --judge");
  }
  const service = opts.url ? null : await startInProcess(config);
  const store = service ? service.store : await openDatabase({ ...config.database, url: config.databaseUrl, dataDir: config.dataDir });
  const stop = new AbortController();
  const onSignal = () => {
    // A second Ctrl-C ends at once (Node's default); the first lets the run store its state.
    process.removeListener("SIGINT", onSignal);
    console.error("\nStopping: answers received so far are stored.");
    stop.abort();
  };
  process.once("SIGINT", onSignal);
  try {
    const completer: Completer = service
      ? new PipelineCompleter(service.serving, () => auditActor(store.db))
      : new HttpCompleter(opts.url!, (await chooseKey(opts.url!, config.dataDir, opts.apiKey)).key);

    let auditRun: AuditRun;
    if (opts.resume) {
      const found = await getAuditRun(store.db, opts.resume);
      if (!found) throw new Error(`no audit run "${opts.resume}" in this data directory (sputnik audit --list shows them)`);
      const status = effectiveStatus(found);
      if (status === "running") throw new Error(`run ${found.id} is still running in another process`);
      if (status === "completed") console.log(`Run ${found.id} is already complete; writing its report.`);
      else await recordAuditRunAction(store.db, null, found, "resume");
      auditRun = found;
    } else {
      const suiteFile = opts.suite ?? BUNDLED_SUITE_PATH;
      const suite = loadSuite(suiteFile);
      auditRun = await startAuditRun(store.db, null, completer, DEFAULT_CLASSIFIERS, {
        suite,
        suiteDigest: suiteDigest(suite),
        filter: parseFilter(opts.filter),
        models: (opts.models ?? "").split(","),
        ...(opts.samples !== undefined ? { samples: opts.samples } : {}),
        temperature: opts.temperature ?? null,
        judge: opts.judge ?? null,
        ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
        maxTokens: opts.maxTokens ?? null,
        via: opts.url ? { kind: "http", url: new HttpCompleter(opts.url, undefined).baseUrl } : { kind: "pipeline" },
      });
      console.log(
        `Audit run ${auditRun.id}: ${auditRun.suite.questions.length} questions of ${auditRun.suiteId}@${auditRun.suiteVersion} × ${auditRun.settings.samples} sample(s) × ${auditRun.models.length} model(s); classifiers ${auditRun.classifiers.join(", ")}`,
      );
    }

    let outcome: RunOutcome = { status: "completed", failed: 0, error: null };
    if (effectiveStatus(auditRun) !== "completed") {
      const progress = createAuditProgress(auditRun.models);
      try {
        outcome = await executeRun(store.db, completer, DEFAULT_CLASSIFIERS, auditRun.id, {
          signal: stop.signal,
          onProgress: (p) => progress.update(p),
          ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
        });
      } finally {
        progress.stop();
      }
    }

    const finished = (await getAuditRun(store.db, auditRun.id))!;
    const report = await buildReport(store, finished);
    const out = path.resolve(opts.out ?? `audit-${finished.id}`);
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, "report.json"), reportToJson(report));
    await writeFile(path.join(out, "report.csv"), reportToCsv(report));
    await writeFile(path.join(out, "report.html"), reportToHtml(report));
    const rules = report.run.classifiers.find((c) => c.startsWith("rules@"));
    for (const summary of report.summaries.filter((s) => s.classifier === rules)) console.log(`${summary.model}: ${summary.text} [${summary.classifier}]`);
    console.log(`Reports: ${path.join(out, "report.html")}, report.json, report.csv`);

    if (outcome.status === "completed") return 0;
    const resume = `sputnik audit --resume ${finished.id}${opts.url ? ` --url ${opts.url}` : ""}`;
    if (outcome.status === "cancelled") {
      console.error(`Stopped. Continue with: ${resume}`);
      return 130;
    }
    console.error(`The run is ${outcome.status}${outcome.error ? `: ${outcome.error}` : ""}. Continue with: ${resume}`);
    return 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    if (service) await service.close();
    else await store.close();
  }
}

/**
 * The service of this data directory in this process (models, limits, billing, the pipeline), on
 * a loopback port nobody is told about: the audit talks to its pipeline directly.
 */
async function startInProcess(config: Config) {
  // Loaded here: only an in-process audit pays for the engines' imports.
  const { startService } = await import("../../runtime/startService.ts");
  return startService({ ...config, host: "127.0.0.1", port: 0, pullDefaultModel: false, logLevel: quieter(config.logLevel) });
}

/** The service's own log would tear the progress bar: only warnings and errors, unless asked for less. */
function quieter(level: Config["logLevel"]): Config["logLevel"] {
  return level === "silent" || level === "fatal" || level === "error" ? level : "warn";
}

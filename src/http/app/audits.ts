import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import { z } from "zod";
import { SuiteCatalog } from "../../audit/catalog.ts";
import { compareReports } from "../../audit/compare.ts";
import type { Completer } from "../../audit/completers.ts";
import { PipelineCompleter } from "../../serving/auditCompleter.ts";
import { AuditJobs } from "../../audit/jobs.ts";
import { reportToCsv } from "../../audit/report/csv.ts";
import { REPORT_CSP, reportToHtml } from "../../audit/report/html.ts";
import { reportFromStored, type AuditReport } from "../../audit/report/json.ts";
import { DEFAULT_CLASSIFIERS, MAX_CONCURRENCY, MAX_SAMPLES } from "../../audit/runner.ts";
import { effectiveStatus, getAuditRun, listAnswers, listAuditRuns, publishedModels, publishedModelsOf, runProgress, type AuditRun } from "../../audit/store.ts";
import { parseSuite, suiteDigest } from "../../audit/suite.ts";
import { auditActor } from "../../commands/auditAccount.ts";
import { publishAuditSummary, recordAuditRunAction, startAuditRun, unpublishAuditSummary, type AuditActor } from "../../commands/audits.ts";
import { ServiceError } from "../../errors.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentAuditRun, presentAuditSummary } from "../../presenters/auditRun.ts";
import type { Serving } from "../../serving/completion.ts";
import type { Database } from "../../store/schema.ts";
import { idParam } from "./params.ts";

const values = z.array(z.string().trim().min(1).max(64)).max(64);
const filterSchema = z
  .object({ country: values.optional(), language: values.optional(), kind: values.optional(), topic: values.optional() })
  .strict()
  .default({});

const startBody = z
  .object({
    models: z.array(z.string().trim().min(1).max(128)).min(1).max(16),
    /** A suite offered here (GET /api/admin/audits/suites), by id; default the bundled one. */
    suite: z.string().trim().min(1).max(128).optional(),
    /** Or a suite of one's own, as its JSON (format sputnik-audit-suite/1). */
    suite_json: z.unknown().optional(),
    filter: filterSchema,
    samples: z.number().int().min(1).max(MAX_SAMPLES).default(1),
    temperature: z.number().min(0).max(2).nullish(),
    judge: z.string().trim().min(1).max(128).nullish(),
    concurrency: z.number().int().min(1).max(MAX_CONCURRENCY).optional(),
    max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  })
  .strict();

const compareQuery = z.object({ a: z.string().min(1).max(64), b: z.string().min(1).max(64), classifier: z.enum(["rules", "judge"]).default("rules") });
const modelParam = z.object({ model: z.string().min(1).max(128) });

export interface AuditRoutesDeps {
  db: Kysely<Database>;
  /** The serving pipeline: the server's own audits ask their models through it, as the audit account. */
  serving: Serving;
  /** Overrides how the models are reached (tests). */
  completer?: Completer;
  /** Extra suite files (config `auditSuites`). */
  suiteFiles?: readonly string[];
  logger?: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}

/**
 * /api/admin/audits: model audits run by the server itself (in-process, through the serving
 * pipeline as the audit account), their progress, reports (JSON, CSV, and the self-contained HTML
 * file), comparisons, and the summaries shown to users. Admins only (src/policies/audits.ts).
 */
export function registerAuditRoutes(app: FastifyInstance, deps: AuditRoutesDeps): AuditJobs {
  const { db } = deps;
  const completer = deps.completer ?? new PipelineCompleter(deps.serving, () => auditActor(db));
  const jobs = new AuditJobs(db, completer, DEFAULT_CLASSIFIERS, deps.logger);
  const catalog = new SuiteCatalog(deps.suiteFiles);
  // After the pipeline's drain (which cut the runs' requests): the runs store their last state first.
  app.addHook("onClose", () => jobs.close());
  const actorOf = (request: FastifyRequest): AuditActor => ({ userId: requireUser(request.actor).userId, ip: request.ip });

  const runOf = async (request: FastifyRequest): Promise<AuditRun> => {
    const id = idParam(request);
    const run = id ? await getAuditRun(db, id) : undefined;
    authorize(request.actor, "auditRun.read", run);
    return run;
  };
  const present = async (run: AuditRun) =>
    presentAuditRun(run, { progress: await runProgress(db, run), published: await publishedModels(db, run.id) });
  const reportOf = async (run: AuditRun): Promise<AuditReport> => reportFromStored({ ...run, status: effectiveStatus(run) }, await listAnswers(db, run.id));

  app.get("/api/admin/audits", async (request, reply) => {
    authorize(request.actor, "auditRun.list");
    reply.header("cache-control", "no-store");
    const runs = await listAuditRuns(db);
    const published = await publishedModelsOf(db, runs.map((r) => r.id));
    const progress = await Promise.all(runs.map((run) => runProgress(db, run)));
    return { data: runs.map((run, i) => presentAuditRun(run, { progress: progress[i]!, published: published.get(run.id) ?? [] })) };
  });

  app.get("/api/admin/audits/suites", async (request) => {
    authorize(request.actor, "auditRun.list");
    return { data: catalog.list() };
  });

  app.post("/api/admin/audits", async (request, reply) => {
    authorize(request.actor, "auditRun.create");
    const body = startBody.parse(request.body);
    if (body.suite !== undefined && body.suite_json !== undefined) {
      throw new ServiceError("invalid_request", "Send suite or suite_json, not both.", { code: "invalid_parameter", param: "suite" });
    }
    let picked;
    if (body.suite_json !== undefined) {
      const suite = parseSuite(body.suite_json, "suite_json");
      picked = { suite, digest: suiteDigest(suite) };
    } else {
      picked = catalog.get(body.suite ?? bundledId(catalog));
    }
    const run = await startAuditRun(db, actorOf(request), completer, DEFAULT_CLASSIFIERS, {
      suite: picked.suite,
      suiteDigest: picked.digest,
      filter: body.filter,
      models: body.models,
      samples: body.samples,
      temperature: body.temperature ?? null,
      judge: body.judge ?? null,
      ...(body.concurrency !== undefined ? { concurrency: body.concurrency } : {}),
      maxTokens: body.max_tokens ?? null,
      via: { kind: "pipeline" },
    });
    jobs.start(run.id);
    return reply.status(202).send(await present(run));
  });

  app.get("/api/admin/audits/compare", async (request) => {
    authorize(request.actor, "auditRun.list");
    const query = compareQuery.parse(request.query);
    const load = async (id: string) => {
      const run = await getAuditRun(db, id);
      authorize(request.actor, "auditRun.read", run);
      return reportOf(run);
    };
    return compareReports(await load(query.a), await load(query.b), { classifier: query.classifier });
  });

  app.get("/api/admin/audits/:id", async (request, reply) => {
    const run = await runOf(request);
    reply.header("cache-control", "no-store");
    return present(run);
  });

  app.post("/api/admin/audits/:id/cancel", async (request) => {
    const run = await runOf(request);
    authorize(request.actor, "auditRun.update", run);
    const stopped = await jobs.cancel(run.id);
    if (!stopped) {
      const status = effectiveStatus(run);
      throw new ServiceError("conflict", status === "running" ? "This run is being worked on by another server process: cancel it there." : `This run is not running (it is ${status}).`, {
        code: "audit_run_not_running",
      });
    }
    await recordAuditRunAction(db, actorOf(request), run, "cancel");
    return present((await getAuditRun(db, run.id))!);
  });

  app.post("/api/admin/audits/:id/resume", async (request, reply) => {
    const run = await runOf(request);
    authorize(request.actor, "auditRun.update", run);
    const status = effectiveStatus(run);
    if (status === "running" || jobs.isRunning(run.id)) throw new ServiceError("conflict", "This run is still running.", { code: "audit_run_running" });
    if (status === "completed") throw new ServiceError("conflict", "This run is complete: there is nothing to resume.", { code: "audit_run_completed" });
    if (run.settings.via.kind !== "pipeline") {
      throw new ServiceError("conflict", "This run asked its models over HTTP from the command line: resume it there (sputnik audit --resume).", { code: "audit_run_elsewhere" });
    }
    await recordAuditRunAction(db, actorOf(request), run, "resume");
    jobs.start(run.id);
    return reply.status(202).send(await present((await getAuditRun(db, run.id))!));
  });

  app.get("/api/admin/audits/:id/report.json", async (request, reply) => {
    const report = await reportOf(await runOf(request));
    reply.header("cache-control", "no-store");
    return reply.type("application/json; charset=utf-8").send(report);
  });

  app.get("/api/admin/audits/:id/report.csv", async (request, reply) => {
    const run = await runOf(request);
    reply.header("cache-control", "no-store");
    reply.header("content-disposition", `attachment; filename="audit-${run.id}.csv"`);
    return reply.type("text/csv; charset=utf-8").send(reportToCsv(await reportOf(run)));
  });

  app.get("/api/admin/audits/:id/report.html", async (request, reply) => {
    const run = await runOf(request);
    const html = reportToHtml(await reportOf(run));
    // The report quotes models' answers: its own policy forbids loading or running anything, and
    // `sandbox` gives it an opaque origin, so even a rendering slip could not act as the admin.
    reply.header("content-security-policy", `${REPORT_CSP}; frame-ancestors 'none'; sandbox`);
    reply.header("content-disposition", `inline; filename="audit-${run.id}.html"`);
    reply.header("cache-control", "no-store");
    return reply.type("text/html; charset=utf-8").send(html);
  });

  app.put("/api/admin/audits/:id/published/:model", async (request) => {
    const run = await runOf(request);
    authorize(request.actor, "auditRun.update", run);
    const { model } = modelParam.parse(request.params);
    const summary = await publishAuditSummary(db, actorOf(request), run.id, model);
    return { model, summary: presentAuditSummary(summary) };
  });

  app.delete("/api/admin/audits/:id/published/:model", async (request, reply) => {
    const run = await runOf(request);
    authorize(request.actor, "auditRun.update", run);
    const { model } = modelParam.parse(request.params);
    if (!(await unpublishAuditSummary(db, actorOf(request), run.id, model))) {
      throw new ServiceError("not_found", `The summary of "${model}" from this run is not published.`, { code: "not_published" });
    }
    return reply.status(204).send();
  });

  return jobs;
}

function bundledId(catalog: SuiteCatalog): string {
  const bundled = catalog.list().find((s) => s.bundled);
  if (!bundled?.id) throw new ServiceError("unavailable", `The bundled audit suite cannot be read${bundled?.error ? `: ${bundled.error}` : ""}.`, { code: "audit_suite_unavailable" });
  return bundled.id;
}

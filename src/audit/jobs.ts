import type { Kysely } from "kysely";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { Completer } from "./completers.ts";
import { executeRun, type AuditClassifiers, type AuditProgress, type RunOutcome } from "./runner.ts";

/**
 * The audit runs this process is working on (started from the admin API): each runs in the
 * background and can be cancelled. Progress is read from the database (src/audit/store.ts
 * `runProgress`), so any replica — or a restarted process — reports it the same way.
 */
export class AuditJobs {
  private readonly running = new Map<string, { stop: AbortController; done: Promise<RunOutcome | undefined> }>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly completer: Completer,
    private readonly classifiers: AuditClassifiers,
    private readonly logger?: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void },
  ) {}

  /** Starts (or resumes) `runId` in the background; false when this process already runs it. */
  start(runId: string, onProgress?: (progress: AuditProgress) => void): boolean {
    if (this.running.has(runId)) return false;
    const stop = new AbortController();
    const done = executeRun(this.db, this.completer, this.classifiers, runId, {
      signal: stop.signal,
      ...(onProgress ? { onProgress } : {}),
      ...(this.logger ? { logger: this.logger } : {}),
    })
      .catch((err: unknown) => {
        this.logger?.error({ err, runId }, "an audit run failed");
        return undefined;
      })
      .finally(() => this.running.delete(runId));
    this.running.set(runId, { stop, done });
    return true;
  }

  isRunning(runId: string): boolean {
    return this.running.has(runId);
  }

  /** Stops a run of this process and waits until its status is stored; false when it runs elsewhere or not at all. */
  async cancel(runId: string): Promise<boolean> {
    const job = this.running.get(runId);
    if (!job) return false;
    job.stop.abort();
    await job.done;
    return true;
  }

  /**
   * Server shutdown: stops every run as interrupted (resumable; the pipeline's drain has usually
   * cut their requests already) and waits until their last writes are done, before the store closes.
   */
  async close(): Promise<void> {
    const reason = new ServiceError("unavailable", "The server is shutting down.", { code: "shutting_down" });
    for (const job of this.running.values()) job.stop.abort(reason);
    await Promise.all([...this.running.values()].map((job) => job.done));
  }
}

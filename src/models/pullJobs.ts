/**
 * Pulls started from the app (Admin → Models): each runs `pullModel` — the same code, egress guard
 * and file lock as `sputnik pull` — in the background, and keeps what a page polling it shows:
 * bytes, speed, time left, and how it ended. Kept in memory: a pull belongs to this process, and
 * an interrupted one leaves its `.partial` file, so starting it again resumes.
 */
import { randomUUID } from "node:crypto";
import { ServiceError } from "../errors.ts";
import { ModelError } from "./errors.ts";
import { validateModelName } from "./registry.ts";
import { parseSource } from "./source.ts";
import { pullModel, type DownloadProgress, type PullOptions, type PullResult } from "./pull.ts";

export type PullState = "downloading" | "verifying" | "done" | "failed" | "cancelled";

export interface PullJob {
  id: string;
  source: string;
  /** The name asked for; the stored name is in `result` once done. */
  name: string | null;
  state: PullState;
  downloadedBytes: number;
  /** Null until the server said (or when it never does). */
  totalBytes: number | null;
  /** Bytes of an earlier interrupted pull that this one kept. */
  resumedFrom: number;
  /** Over the last few seconds; null before there is a second reading. */
  bytesPerSecond: number | null;
  /** Seconds left at that speed; null when the size or the speed is unknown. */
  etaSeconds: number | null;
  startedAt: number;
  finishedAt: number | null;
  /** Why it failed, in words for people (a ModelError's message). */
  error: string | null;
  result: PullResult | null;
  /** Who started it (the audit log has the rest). */
  startedBy: string | null;
}

export interface PullJobsOptions {
  modelsDir: string;
  hfEndpoint?: string;
  allowPrivateNetwork: boolean;
  allowHttp: boolean;
  /** Finished pulls kept for the page to show (oldest dropped first). Default 20. */
  keepFinished?: number;
  /** The downloader; tests may wrap it. Default `pullModel`. */
  pull?: (options: PullOptions) => Promise<PullResult>;
  now?: () => number;
  onError?: (error: unknown, job: PullJob) => void;
  /** Told of each pull that ends with its file in place (the file was verified unless `alreadyPresent`). */
  onDone?: (result: PullResult) => void;
}

/** Speed is measured over this window: steady enough to read, quick to follow a change. */
const SPEED_WINDOW_MS = 5000;

interface Running {
  job: PullJob;
  controller: AbortController;
  samples: Array<{ at: number; bytes: number }>;
  done: Promise<void>;
}

export class PullJobs {
  private readonly jobs = new Map<string, Running>();
  private readonly now: () => number;

  constructor(private readonly options: PullJobsOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Starts a pull in the background. One at a time per source: the same source again while it
   * runs is refused (409), naming the pull to watch instead. Two sources that land in the same file
   * are kept apart by pullModel's file lock (the second fails with its message).
   */
  start(input: { source: string; name?: string | null; startedBy?: string | null }): PullJob {
    const source = input.source.trim();
    // A bad source or name is refused now, not reported later as a failed pull.
    const name = input.name ? refuse(() => validateModelName(input.name), "name") : null;
    refuse(() => parseSource(source), "source");
    const key = sourceKey(source);
    for (const { job } of this.jobs.values()) {
      if (isActive(job) && sourceKey(job.source) === key) {
        throw new ServiceError("conflict", `${source} is already being pulled (${percent(job)}).`, { code: "pull_in_progress", param: "source" });
      }
    }
    const job: PullJob = {
      id: randomUUID(),
      source,
      name,
      state: "downloading",
      downloadedBytes: 0,
      totalBytes: null,
      resumedFrom: 0,
      bytesPerSecond: null,
      etaSeconds: null,
      startedAt: this.now(),
      finishedAt: null,
      error: null,
      result: null,
      startedBy: input.startedBy ?? null,
    };
    const running: Running = { job, controller: new AbortController(), samples: [], done: Promise.resolve() };
    this.jobs.set(job.id, running);
    this.trim();
    running.done = this.run(running);
    return { ...job };
  }

  /** A copy of one pull's state; undefined for an unknown id (or one dropped long ago). */
  get(id: string): PullJob | undefined {
    const running = this.jobs.get(id);
    return running ? { ...running.job } : undefined;
  }

  /** Every pull kept, newest first. */
  list(): PullJob[] {
    return [...this.jobs.values()].map((r) => ({ ...r.job })).sort((a, b) => b.startedAt - a.startedAt);
  }

  /**
   * Stops a running pull and resolves once it has stopped. The `.partial` file stays, so the same
   * pull started again resumes. A finished pull is left as it is (and returned).
   */
  async cancel(id: string): Promise<PullJob | undefined> {
    const running = this.jobs.get(id);
    if (!running) return undefined;
    if (isActive(running.job)) {
      running.controller.abort();
      await running.done;
    }
    return { ...running.job };
  }

  /** Whether a pull is writing the file of model `name` now (its file is not to be deleted or loaded meanwhile). */
  isPulling(name: string): boolean {
    return [...this.jobs.values()].some(({ job }) => isActive(job) && (job.name === name || job.result?.name === name));
  }

  /** Cancels every running pull (at shutdown) and waits for them to stop. */
  async close(): Promise<void> {
    const active = [...this.jobs.values()].filter((r) => isActive(r.job));
    for (const r of active) r.controller.abort();
    await Promise.all(active.map((r) => r.done));
  }

  private async run(running: Running): Promise<void> {
    const { job, controller } = running;
    const pull = this.options.pull ?? pullModel;
    try {
      const result = await pull({
        source: job.source,
        modelsDir: this.options.modelsDir,
        ...(job.name ? { name: job.name } : {}),
        ...(this.options.hfEndpoint ? { hfEndpoint: this.options.hfEndpoint } : {}),
        allowPrivateNetwork: this.options.allowPrivateNetwork,
        allowHttp: this.options.allowHttp,
        signal: controller.signal,
        onProgress: (progress) => this.progress(running, progress),
        onVerify: () => {
          job.state = "verifying";
          job.etaSeconds = null;
        },
      });
      job.result = result;
      job.name = result.name;
      job.downloadedBytes = Math.max(job.downloadedBytes, result.bytes);
      job.totalBytes ??= result.bytes;
      job.etaSeconds = 0;
      job.state = "done";
      this.options.onDone?.(result);
    } catch (error) {
      job.etaSeconds = null;
      if (controller.signal.aborted) {
        job.state = "cancelled";
      } else {
        job.state = "failed";
        // ModelErrors are written for people (`sputnik pull` prints them as they are); anything
        // else is our own trouble: logged, and told in general words.
        job.error = error instanceof ModelError ? error.message : "The pull failed unexpectedly; the server log has the details.";
        if (!(error instanceof ModelError)) this.options.onError?.(error, { ...job });
      }
    } finally {
      job.finishedAt = this.now();
    }
  }

  private progress(running: Running, progress: DownloadProgress): void {
    const { job, samples } = running;
    const at = this.now();
    job.downloadedBytes = progress.downloadedBytes;
    job.totalBytes = progress.totalBytes;
    job.resumedFrom = progress.resumedFrom;
    // A restart from zero (the file changed on the server) begins a new series of readings.
    if (samples.length > 0 && progress.downloadedBytes < samples[samples.length - 1]!.bytes) samples.length = 0;
    samples.push({ at, bytes: progress.downloadedBytes });
    while (samples.length > 2 && at - samples[1]!.at >= SPEED_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const elapsedS = (at - first.at) / 1000;
    job.bytesPerSecond = elapsedS > 0 ? Math.round((progress.downloadedBytes - first.bytes) / elapsedS) : job.bytesPerSecond;
    job.etaSeconds =
      job.totalBytes !== null && job.bytesPerSecond !== null && job.bytesPerSecond > 0
        ? Math.ceil((job.totalBytes - job.downloadedBytes) / job.bytesPerSecond)
        : null;
  }

  /** Keeps every running pull and the newest finished ones. */
  private trim(): void {
    const keep = this.options.keepFinished ?? 20;
    const finished = [...this.jobs.values()].filter((r) => !isActive(r.job)).sort((a, b) => b.job.startedAt - a.job.startedAt);
    for (const r of finished.slice(keep)) this.jobs.delete(r.job.id);
  }
}

/** Runs a check of models/ and turns its ModelError into the request's 400, naming the field. */
function refuse<T>(check: () => T, param: string): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ModelError) throw new ServiceError("invalid_request", error.message, { code: error.code, param });
    throw error;
  }
}

function isActive(job: PullJob): boolean {
  return job.state === "downloading" || job.state === "verifying";
}

/** hf: sources compare case-insensitively (the Hub does); URLs as written. */
function sourceKey(source: string): string {
  return source.toLowerCase().startsWith("hf:") ? source.toLowerCase() : source;
}

function percent(job: PullJob): string {
  if (job.state === "verifying") return "verifying";
  return job.totalBytes ? `${Math.floor((job.downloadedBytes / job.totalBytes) * 100)}%` : `${job.downloadedBytes} bytes`;
}

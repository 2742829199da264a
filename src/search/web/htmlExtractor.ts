/**
 * The main text of result pages, off the event loop. documents/html.ts (Readability over a
 * linkedom DOM) costs about 3 ms per KiB of HTML here (measured: 256 KiB ≈ 0.8 s, 1 MiB ≈ 2.5 s,
 * 8 MiB ≈ 19 s), which on the event loop would stall every other request; so it runs in one
 * worker thread, one page at a time, each page under a time limit (the worker is terminated and
 * replaced when over it) and the worker under a heap limit. The page is already bounded by
 * `maxPageBytes` before it gets here.
 */
import { Worker } from "node:worker_threads";

const WORKER_URL = new URL("./htmlWorker.mjs", import.meta.url);
const DEFAULTS = { timeoutMs: 10_000, maxHeapMb: 512, idleMs: 30_000 };

export interface HtmlExtractorOptions {
  /** Wall time for one page once the worker has it. */
  timeoutMs?: number;
  /** The worker's old-generation heap limit. */
  maxHeapMb?: number;
  /** An idle worker is ended after this long (it holds its own V8 heap). */
  idleMs?: number;
}

export class HtmlExtractionError extends Error {}

interface Job {
  id: number;
  html: string;
  url: string;
  signal?: AbortSignal;
  resolve(result: { title: string | null; text: string }): void;
  reject(error: unknown): void;
}

type Reply = { ready: true } | { id: number; title: string | null; text: string } | { id: number; error: string };

export class HtmlExtractor {
  private readonly options: Required<HtmlExtractorOptions>;
  private readonly queue: Job[] = [];
  private running = false;
  private worker: Promise<Worker> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private nextId = 1;

  constructor(options: HtmlExtractorOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  extract(html: string, url: string, signal?: AbortSignal): Promise<{ title: string | null; text: string }> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      this.queue.push({ id: this.nextId++, html, url, signal, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.then((w) => w.terminate(), () => {});
  }

  private pump(): void {
    if (this.running) return;
    const job = this.queue.shift();
    if (!job) {
      this.scheduleIdleClose();
      return;
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.running = true;
    void this.run(job).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  private async run(job: Job): Promise<void> {
    if (job.signal?.aborted) return job.reject(job.signal.reason); // gave up while queued
    let worker: Worker;
    try {
      worker = await this.started();
    } catch (error) {
      return job.reject(new HtmlExtractionError(`the extraction worker could not start: ${(error as Error).message}`));
    }
    await new Promise<void>((done) => {
      const finish = (settle: () => void, discard = false) => {
        clearTimeout(timer);
        job.signal?.removeEventListener("abort", onAbort);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (discard) this.discard(worker);
        settle();
        done();
      };
      // The time limit starts when a ready worker has the page: its start-up is ours, not the page's.
      const timer = setTimeout(
        () => finish(() => job.reject(new HtmlExtractionError(`reading the page took longer than ${this.options.timeoutMs} ms`)), true),
        this.options.timeoutMs,
      );
      const onAbort = () => finish(() => job.reject(job.signal!.reason), true);
      const onMessage = (reply: Reply) => {
        if (!("id" in reply) || reply.id !== job.id) return;
        if ("error" in reply) finish(() => job.reject(new HtmlExtractionError(reply.error)));
        else finish(() => job.resolve({ title: reply.title, text: reply.text }));
      };
      const onError = (error: Error & { code?: string }) =>
        finish(
          () =>
            job.reject(
              new HtmlExtractionError(error.code === "ERR_WORKER_OUT_OF_MEMORY" ? "reading the page needed too much memory" : `the extraction worker failed: ${error.message}`),
            ),
          true,
        );
      const onExit = () => finish(() => job.reject(new HtmlExtractionError("the extraction worker exited")), true);
      job.signal?.addEventListener("abort", onAbort, { once: true });
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage({ id: job.id, html: job.html, url: job.url });
    });
  }

  private started(): Promise<Worker> {
    this.worker ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb } });
      worker.unref(); // never what keeps the process alive
      const onReady = (reply: Reply) => {
        if (!("ready" in reply)) return;
        worker.off("message", onReady);
        worker.off("error", onFail);
        worker.off("exit", onFail);
        resolve(worker);
      };
      const onFail = (error: unknown) => {
        worker.off("message", onReady);
        this.discard(worker);
        reject(error instanceof Error ? error : new Error(`exited with code ${String(error)}`));
      };
      worker.on("message", onReady);
      worker.once("error", onFail);
      worker.once("exit", onFail);
    });
    const current = this.worker;
    current.catch(() => {
      if (this.worker === current) this.worker = null;
    });
    return current;
  }

  /** Terminates a worker that timed out, failed or was abandoned mid-page; the next page starts a fresh one. */
  private discard(worker: Worker): void {
    this.worker = null;
    worker.removeAllListeners("exit");
    worker.on("error", () => {}); // an error after termination has no one left to tell
    void worker.terminate();
  }

  private scheduleIdleClose(): void {
    if (!this.worker || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.running && this.queue.length === 0) void this.close();
    }, this.options.idleMs);
    this.idleTimer.unref();
  }
}

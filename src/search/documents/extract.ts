/**
 * An uploaded document's text: what the file really is (sniff.ts, from its bytes, never from its
 * name or declared type), then its text — markdown-ish, with headings as `#` lines where the format
 * knows them, so the chunker (chunk.ts) can keep them.
 *
 * Bounds, in order: the size is checked before anything parses the file (too_large); plain text and
 * Markdown are only decoded (linear, on this thread); PDF, DOCX and HTML are parsed in a fresh
 * worker thread (extractWorker.mjs) with a heap limit, a timeout that terminates it, and a watch on
 * the process's memory. The watch exists because a PDF's FlateDecode streams inflate into
 * ArrayBuffers, which live outside the V8 heap that `resourceLimits` caps: a "PDF bomb" of a few
 * hundred kilobytes grows the process by hundreds of megabytes while staying under the heap limit
 * (measured: a 300 KB PDF whose content stream inflates to 300 MB took the process to 680 MB).
 * One worker runs at a time, so the process's growth during a run is that worker's.
 * The text is capped at `maxChars` (`truncated`), inside the worker already.
 */
import { Worker } from "node:worker_threads";
import { ServiceError } from "../../errors.ts";
import type { ExtractionJob, ExtractionOutput } from "./extractors.ts";
import { sniffDocument, type DocumentKind } from "./sniff.ts";

export interface ExtractedDocument {
  mime: string;
  kind: DocumentKind;
  title: string | null;
  text: string;
  truncated: boolean;
}

export interface ExtractLimits {
  /** The largest file accepted, checked before any parsing. */
  maxBytes: number;
  /** The longest text kept; the rest is cut (`truncated`). */
  maxChars: number;
  /** How long the worker may read one file (its start-up not counted). */
  timeoutMs: number;
  /** The worker's V8 heap (`resourceLimits.maxOldGenerationSizeMb`). */
  maxHeapMb: number;
  /** How much the whole process may grow while the worker reads (heap + buffers outside it). */
  maxMemoryMb: number;
  /** The most a DOCX's zip entries may declare uncompressed, together (a zip bomb's tell). */
  maxUnpackedBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxBytes: 20 * 1024 * 1024,
  maxChars: 2_000_000,
  timeoutMs: 30_000,
  maxHeapMb: 256,
  maxMemoryMb: 768,
  maxUnpackedBytes: 128 * 1024 * 1024,
});

const WORKER_URL = new URL("./extractWorker.mjs", import.meta.url);
/** The worker's own start (a thread, tsx, pdf.js): generous, since it is not the file's doing. */
const STARTUP_TIMEOUT_MS = 30_000;
const MEMORY_POLL_MS = 25;
const MB = 1024 * 1024;

export async function extractDocument(
  bytes: Uint8Array,
  opts: { filename?: string; declaredMime?: string; limits?: Partial<ExtractLimits> } = {},
): Promise<ExtractedDocument> {
  // The name and declared type are deliberately unused for the decision: they are claims.
  const limits = { ...DEFAULT_EXTRACT_LIMITS, ...opts.limits };
  if (bytes.length > limits.maxBytes) {
    throw new ServiceError("too_large", `The file is ${formatMb(bytes.length)} MB, over the limit of ${formatMb(limits.maxBytes)} MB.`, {
      code: "file_too_large",
      param: "file",
    });
  }
  const sniffed = await sniffDocument(bytes);
  if (sniffed.kind === "text" || sniffed.kind === "markdown") {
    const text = normalizeText(sniffed.text!);
    const heading = sniffed.kind === "markdown" ? /^#{1,6}[ \t]+(.+?)[ \t#]*$/m.exec(text) : null;
    return { mime: sniffed.mime, kind: sniffed.kind, title: heading ? heading[1]! : null, ...cap(text, limits.maxChars) };
  }
  const job: ExtractionJob =
    sniffed.kind === "html"
      ? { kind: "html", text: sniffed.text!, maxChars: limits.maxChars, maxUnpackedBytes: limits.maxUnpackedBytes }
      : { kind: sniffed.kind, bytes, maxChars: limits.maxChars, maxUnpackedBytes: limits.maxUnpackedBytes };
  const output = await inWorker(job, limits, label(sniffed.kind));
  return { mime: sniffed.mime, kind: sniffed.kind, title: output.title, text: output.text, truncated: output.truncated };
}

function label(kind: DocumentKind): string {
  return kind === "pdf" ? "PDF" : kind === "docx" ? "DOCX" : "HTML page";
}

/** Line ends as `\n`, no NUL-like leftovers; the text otherwise as written. */
function normalizeText(text: string): string {
  return text.replace(/\r\n?/g, "\n");
}

function cap(text: string, maxChars: number): { text: string; truncated: boolean } {
  if (text.length <= maxChars) return { text, truncated: false };
  let end = maxChars;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return { text: text.slice(0, end), truncated: true };
}

// One extraction worker at a time (see the header); the others wait their turn, untimed.
let busy = false;
const waiting: Array<() => void> = [];

async function inWorker(job: ExtractionJob, limits: ExtractLimits, what: string): Promise<ExtractionOutput> {
  if (busy) await new Promise<void>((resolve) => waiting.push(resolve));
  busy = true;
  try {
    return await runWorker(job, limits, what);
  } finally {
    const next = waiting.shift();
    if (next) next();
    else busy = false;
  }
}

interface WorkerReply {
  ready?: true;
  ok?: boolean;
  result?: ExtractionOutput;
  refusal?: "unreadable" | "encrypted" | "too_large_unpacked";
  message?: string;
}

function runWorker(job: ExtractionJob, limits: ExtractLimits, what: string): Promise<ExtractionOutput> {
  return new Promise<ExtractionOutput>((resolve, reject) => {
    const baselineRss = process.memoryUsage.rss();
    const worker = new Worker(WORKER_URL, {
      // The worker registers tsx itself; the parent's `--import tsx` would only slow its start.
      execArgv: [],
      workerData: { kind: job.kind },
      resourceLimits: { maxOldGenerationSizeMb: limits.maxHeapMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, limits.maxHeapMb / 8)), stackSizeMb: 4 },
    });
    let settled = false;
    let jobTimer: NodeJS.Timeout | undefined;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(startTimer);
      clearTimeout(jobTimer);
      clearInterval(memoryWatch);
      worker.removeAllListeners();
      // An error after termination has no one left to tell.
      worker.on("error", () => {});
      // Settled once the thread is gone, so the next worker's memory watch starts from a
      // baseline without this one.
      worker.terminate().then(settle, settle);
    };
    const startTimer = setTimeout(() => {
      finish(() => reject(new ServiceError("unavailable", "The document reader did not start in time; try again.", { code: "extraction_unavailable", retryAfterS: 5 })));
    }, STARTUP_TIMEOUT_MS);
    const memoryWatch = setInterval(() => {
      if (process.memoryUsage.rss() - baselineRss > limits.maxMemoryMb * MB) {
        finish(() => reject(tooComplex(what, `reading it needed more than ${limits.maxMemoryMb} MB of memory`)));
      }
    }, MEMORY_POLL_MS);
    worker.on("message", (reply: WorkerReply) => {
      if (reply.ready) {
        clearTimeout(startTimer);
        // The budget starts when the file reaches a ready worker: its start-up is not the file's cost.
        jobTimer = setTimeout(() => finish(() => reject(tooComplex(what, `reading it took longer than ${limits.timeoutMs / 1000} s`))), limits.timeoutMs);
        // A copy of the bytes travels (transferred, not cloned again): the caller's stay usable.
        // (A Buffer's slice() is a view of the same memory: `new Uint8Array(x)` copies.)
        const transfer = job.bytes ? { ...job, bytes: new Uint8Array(job.bytes) } : job;
        worker.postMessage(transfer, transfer.bytes ? [transfer.bytes.buffer as ArrayBuffer] : []);
        return;
      }
      if (reply.ok && reply.result) finish(() => resolve(reply.result!));
      else finish(() => reject(refused(what, reply)));
    });
    worker.on("error", (error: Error & { code?: string }) => {
      // Its heap limit: the file's fault. Anything else: ours.
      if (error.code === "ERR_WORKER_OUT_OF_MEMORY") finish(() => reject(tooComplex(what, `reading it needed more than its ${limits.maxHeapMb} MB heap`)));
      else finish(() => reject(new ServiceError("internal", "The document reader failed.", { code: "extraction_failed", cause: error })));
    });
    worker.on("exit", (code) => {
      finish(() => reject(new ServiceError("internal", `The document reader exited (code ${code}).`, { code: "extraction_failed" })));
    });
  });
}

function tooComplex(what: string, why: string): ServiceError {
  return new ServiceError("unprocessable", `The ${what} could not be read within the limits: ${why}.`, { code: "document_too_complex", param: "file" });
}

function refused(what: string, reply: WorkerReply): ServiceError {
  const message = reply.message ?? `The ${what} could not be read.`;
  switch (reply.refusal) {
    case "encrypted":
      return new ServiceError("unprocessable", message, { code: "document_encrypted", param: "file" });
    case "too_large_unpacked":
      return new ServiceError("too_large", message, { code: "document_unpacks_too_large", param: "file" });
    default:
      return new ServiceError("unprocessable", message, { code: "document_unreadable", param: "file" });
  }
}

function formatMb(bytes: number): string {
  return (bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0);
}

/**
 * Resumable download of one URL into a `.partial` file.
 *
 * Beside the partial file, a small JSON state file records the URL and the validator (strong
 * ETag, else Last-Modified) of the response the bytes came from. A later run resumes with
 * `Range` + `If-Range`: a server that still has the same file answers 206 with the rest; one
 * whose file changed (or that ignores ranges) answers 200 with the whole file, and we start over.
 * Without a validator we never resume, since splicing two different files would go unnoticed
 * until the checksum-less GGUF failed to load (or worse, loaded).
 */
import { open, readFile, rm, stat, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { readBody } from "./bodyReader.ts";
import { ModelError } from "./errors.ts";
import { guardedGet, httpError, type GetOptions } from "./http.ts";
import { redact } from "./netguard.ts";

export interface DownloadProgress {
  /** Bytes of the file now on disk. */
  downloadedBytes: number;
  /** Size of the whole file, when the server says. */
  totalBytes: number | null;
  /** Bytes that were already on disk when this download started (0 for a fresh one). */
  resumedFrom: number;
}

export interface DownloadOptions extends Omit<GetOptions, "headers"> {
  url: URL;
  /** The `.partial` file; its state file is `<partialPath>.json`. */
  partialPath: string;
  onProgress?: (progress: DownloadProgress) => void;
}

export interface DownloadResult {
  bytes: number;
  /** True when bytes from an earlier, interrupted download were kept. */
  resumed: boolean;
}

interface PartialState {
  url: string;
  etag: string | null;
  lastModified: string | null;
  totalBytes: number | null;
}

export function statePath(partialPath: string): string {
  return `${partialPath}.json`;
}

export async function downloadToPartial(options: DownloadOptions): Promise<DownloadResult> {
  const existing = await resumableBytes(options);
  const firstTry = await request(options, existing);
  if (firstTry.kind === "complete") return { bytes: existing!.bytes, resumed: true };
  if (firstTry.kind === "restart") {
    // The server could not serve the rest (416 for a changed file, a bogus Content-Range): start over.
    const again = await request(options, null);
    if (again.kind !== "body") throw new ModelError("download_failed", `Unexpected answer from ${redact(options.url)}.`);
    return receive(options, again);
  }
  return receive(options, firstTry);
}

type Answer =
  | { kind: "body"; response: IncomingMessage; url: URL; offset: number; totalBytes: number | null }
  | { kind: "complete" }
  | { kind: "restart" };

async function request(options: DownloadOptions, resume: { bytes: number; state: PartialState } | null): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (resume) {
    headers.range = `bytes=${resume.bytes}-`;
    headers["if-range"] = (resume.state.etag ?? resume.state.lastModified)!;
  }
  const { response, url } = await guardedGet(options.url, { ...options, headers });
  const status = response.statusCode ?? 0;
  if (status === 200) {
    return { kind: "body", response, url, offset: 0, totalBytes: contentLength(response) };
  }
  if (status === 206 && resume) {
    const range = parseContentRange(response.headers["content-range"]);
    const known = resume.state.totalBytes;
    const rangeFits = range !== null && range.start === resume.bytes && range.total !== null && range.end === range.total - 1;
    // A server that honours Range but ignores If-Range would splice a changed file: compare ourselves too.
    const etag = strongEtag(response.headers.etag);
    const sameFile = (known === null || known === range?.total) && (etag === null || resume.state.etag === null || etag === resume.state.etag);
    if (rangeFits && sameFile) {
      return { kind: "body", response, url, offset: resume.bytes, totalBytes: range.total };
    }
    response.destroy();
    return { kind: "restart" };
  }
  if (status === 416 && resume) {
    response.resume();
    const total = parseUnsatisfiedRange(response.headers["content-range"]);
    return total !== null && total === resume.bytes && resume.state.totalBytes === total ? { kind: "complete" } : { kind: "restart" };
  }
  response.resume();
  throw httpError(status, url);
}

async function receive(options: DownloadOptions, answer: Extract<Answer, { kind: "body" }>): Promise<DownloadResult> {
  const { response, offset, totalBytes } = answer;
  const state: PartialState = {
    url: options.url.href,
    etag: strongEtag(response.headers.etag),
    lastModified: response.headers["last-modified"] ?? null,
    totalBytes,
  };
  let downloaded = offset;
  const report = () => options.onProgress?.({ downloadedBytes: downloaded, totalBytes, resumedFrom: offset });
  report();
  // The state is written before the first byte, so that whatever lands in the partial file can be
  // resumed. readBody starts listening at once (no await before it): the events of a connection
  // that drops meanwhile must not be missed.
  const opening = storage(
    options.partialPath,
    writeFile(statePath(options.partialPath), JSON.stringify(state)).then(() => open(options.partialPath, offset > 0 ? "a" : "w")),
  );
  opening.catch(() => {}); // consumed through `reading` or below; never left unhandled
  try {
    // Each chunk is on disk before the next is taken, so a cut or an abort leaves a resumable prefix.
    await readBody(
      response,
      async (chunk) => {
        if (totalBytes !== null && downloaded + chunk.length > totalBytes) {
          throw new ModelError("download_failed", `${redact(answer.url)} sent more bytes than announced.`);
        }
        await storage(options.partialPath, (await opening).write(chunk));
        downloaded += chunk.length;
        report();
      },
      options.signal,
    );
    await storage(options.partialPath, (await opening).sync());
  } catch (error) {
    if ((error as Error).name === "AbortError" || error instanceof ModelError) throw error;
    throw interrupted(options, downloaded, totalBytes, state, error);
  } finally {
    await (await opening.catch(() => null))?.close();
  }
  if (totalBytes !== null && downloaded !== totalBytes) {
    throw interrupted(options, downloaded, totalBytes, state);
  }
  return { bytes: downloaded, resumed: offset > 0 };
}

/** Bytes of an earlier attempt that may be resumed, or null when starting from zero is the only safe choice. */
async function resumableBytes(options: DownloadOptions): Promise<{ bytes: number; state: PartialState } | null> {
  const size = (await stat(options.partialPath).catch(() => null))?.size ?? 0;
  let state: PartialState | null = null;
  try {
    state = JSON.parse(await readFile(statePath(options.partialPath), "utf8")) as PartialState;
  } catch {
    // no state or unreadable state: the partial bytes are of unknown origin
  }
  const usable = size > 0 && state !== null && state.url === options.url.href && (state.etag !== null || state.lastModified !== null);
  if (!usable) {
    await rm(options.partialPath, { force: true });
    await rm(statePath(options.partialPath), { force: true });
    return null;
  }
  return { bytes: size, state: state! };
}

function interrupted(options: DownloadOptions, downloaded: number, total: number | null, state: PartialState, cause?: unknown): ModelError {
  const of = total === null ? "" : ` of ${total}`;
  const resumable = state.etag !== null || state.lastModified !== null;
  return new ModelError(
    "download_failed",
    `Download from ${redact(options.url)} was interrupted after ${downloaded}${of} bytes` +
      (cause instanceof Error ? ` (${cause.message})` : "") +
      (resumable ? "; run the same pull again to resume." : "; the server gives no ETag or Last-Modified, so a new pull starts over."),
    { cause },
  );
}

/** File system failures (disk full, permissions) are not network trouble: no "rerun to resume". */
async function storage<T>(path: string, operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    throw new ModelError("storage_error", `Cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** A weak ETag ("W/...") must not be used for If-Range, which requires byte-for-byte identity. */
function strongEtag(etag: string | undefined): string | null {
  return etag !== undefined && etag !== "" && !etag.startsWith("W/") ? etag : null;
}

function contentLength(response: IncomingMessage): number | null {
  const value = response.headers["content-length"];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

/** "bytes 100-199/200" → {start: 100, end: 199, total: 200}; total is null for "/*". */
function parseContentRange(value: string | undefined): { start: number; end: number; total: number | null } | null {
  const match = value === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (!match) return null;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === "*" ? null : Number(match[3]) };
}

/** "bytes *\/200" (the Content-Range of a 416) → 200. */
function parseUnsatisfiedRange(value: string | undefined): number | null {
  const match = value === undefined ? null : /^bytes \*\/(\d+)$/.exec(value.trim());
  return match ? Number(match[1]) : null;
}

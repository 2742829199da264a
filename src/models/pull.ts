/**
 * `sputnik pull`: fetch one GGUF into the models directory.
 *
 *   source → URL (Hugging Face API for hf: sources) → `<name>.gguf.partial` (resumable)
 *   → verified in a child process → renamed to `<name>.gguf`
 *
 * Own downloader rather than node-llama-cpp's `createModelDownloader`: that one cannot refuse
 * private addresses per connection (including redirect hops), does not let us require a
 * strong validator before splicing a resumed file, and verifying in a child process would
 * still be ours to do. The code here is small and tested against real local servers.
 */
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { downloadToPartial, statePath, type DownloadProgress } from "./download.ts";
import { ModelError } from "./errors.ts";
import { hfEndpoint, resolveHfFile } from "./huggingface.ts";
import { acquirePullLock } from "./pullLock.ts";
import type { NetworkPolicy } from "./netguard.ts";
import { MODEL_EXTENSION, modelFilePath, validateModelName } from "./registry.ts";
import { parseSource, urlFileName } from "./source.ts";
import { verifyGguf } from "./verify.ts";
import type { GgufSummary } from "./ggufInfo.ts";

export type { DownloadProgress } from "./download.ts";

export interface PullOptions {
  /** `hf:user/repo:QUANT`, `hf:user/repo/path/file.gguf` or an https URL. */
  source: string;
  modelsDir: string;
  /** Model name to store it under; defaults to the file name without `.gguf`. */
  name?: string;
  onProgress?: (progress: DownloadProgress) => void;
  /** Told when the download is done and the (possibly slow) load check starts. */
  onVerify?: () => void;
  /** Aborting leaves the `.partial` file, so the next pull of the same source resumes. */
  signal?: AbortSignal;
  /** Defaults to env SPUTNIK_HF_ENDPOINT, then https://huggingface.co. */
  hfEndpoint?: string;
  /** Defaults to env HF_TOKEN; sent only to the Hugging Face endpoint. */
  hfToken?: string;
  allowPrivateNetwork?: boolean;
  allowHttp?: boolean;
  /** Automatic resumes after a dropped connection, within this one call. Default 3. */
  retries?: number;
  verifyTimeoutMs?: number;
}

export interface PullResult {
  path: string;
  name: string;
  bytes: number;
  /** True when bytes of an earlier interrupted download were reused. */
  resumed: boolean;
  /** True when the model was already in the directory and nothing was downloaded. */
  alreadyPresent: boolean;
  /** Header metadata; null only when `alreadyPresent` (nothing was verified). */
  info: GgufSummary | null;
}

export async function pullModel(options: PullOptions): Promise<PullResult> {
  const policy: NetworkPolicy = {
    allowPrivateNetwork: options.allowPrivateNetwork ?? false,
    allowHttp: options.allowHttp ?? false,
  };
  const { url, fileName, bearer } = await resolveSource(options, policy);
  const name = options.name !== undefined ? validateModelName(options.name) : nameFromFile(fileName);
  const finalPath = modelFilePath(options.modelsDir, name);

  await mkdir(options.modelsDir, { recursive: true });
  const partialPath = `${finalPath}.partial`;
  const release = await acquirePullLock(`${partialPath}.lock`, name);
  try {
    // Checked under the lock: a concurrent pull of the same model may just have finished.
    const existing = await stat(finalPath).catch(() => null);
    if (existing) {
      return { path: finalPath, name, bytes: existing.size, resumed: false, alreadyPresent: true, info: null };
    }
    const download = await downloadWithRetries(options, { url, partialPath, bearer, policy });
    options.onVerify?.();
    // An abort here keeps the complete partial file: the next pull finds it whole and only verifies.
    const verdict = await verifyGguf(partialPath, { timeoutMs: options.verifyTimeoutMs, signal: options.signal });
    if (!verdict.ok) {
      await discard(partialPath);
      throw new ModelError("invalid_model", `Downloaded file is not a usable model and was deleted: ${verdict.reason}`);
    }
    await rename(partialPath, finalPath);
    await rm(statePath(partialPath), { force: true });
    return { path: finalPath, name, bytes: download.bytes, resumed: download.resumed, alreadyPresent: false, info: verdict.info };
  } finally {
    await release();
  }
}

async function resolveSource(options: PullOptions, policy: NetworkPolicy) {
  const source = parseSource(options.source);
  if (source.kind === "url") {
    return { url: source.url, fileName: urlFileName(source.url), bearer: undefined };
  }
  const endpoint = hfEndpoint(options.hfEndpoint);
  const token = options.hfToken ?? process.env.HF_TOKEN ?? undefined;
  const file = await resolveHfFile(source, { endpoint, token: token || undefined, policy, signal: options.signal });
  const bearer = token ? { origin: new URL(endpoint).origin, token } : undefined;
  return { url: file.url, fileName: file.filePath.split("/").pop() ?? "", bearer };
}

function nameFromFile(fileName: string): string {
  if (!fileName.toLowerCase().endsWith(MODEL_EXTENSION)) {
    throw new ModelError("invalid_name", `Cannot derive a model name from ${JSON.stringify(fileName)}: give one with --name.`);
  }
  try {
    return validateModelName(fileName);
  } catch (error) {
    throw new ModelError("invalid_name", `${(error as Error).message} Give another name with --name.`);
  }
}

async function downloadWithRetries(
  options: PullOptions,
  target: { url: URL; partialPath: string; bearer?: { origin: string; token: string }; policy: NetworkPolicy },
) {
  const retries = options.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadToPartial({ ...target, signal: options.signal, onProgress: options.onProgress });
    } catch (error) {
      // Only a transfer cut short is retried (it resumes); failing to connect, HTTP errors,
      // policy refusals and aborts are reported at once.
      const dropped = error instanceof ModelError && error.code === "download_failed";
      if (!dropped || attempt >= retries || options.signal?.aborted) throw error;
      await sleep(1000 * (attempt + 1), options.signal);
    }
  }
}

async function discard(partialPath: string): Promise<void> {
  await rm(partialPath, { force: true });
  await rm(statePath(partialPath), { force: true });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolvePromise();
    }
  });
}

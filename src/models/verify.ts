/**
 * Checks that llama.cpp can load a GGUF file, in a child process (see verifyChild.ts for why):
 * a crash, a non-zero exit or a hang of the child is a verdict about the file, not a crash of ours.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RESULT_PREFIX, type VerifyResult } from "./verifyProtocol.ts";

export type { VerifyResult } from "./verifyProtocol.ts";

export const DEFAULT_VERIFY_TIMEOUT_MS = 5 * 60_000;

const CHILD_SCRIPT = fileURLToPath(new URL("./verifyChild.ts", import.meta.url));
// Resolved from this module, so the child starts the same way whatever the current directory is.
const TSX_LOADER = import.meta.resolve("tsx");
const STDERR_TAIL = 4000;

/** Rejects only with an AbortError when `signal` aborts; every verdict about the file resolves. */
export function verifyGguf(path: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<VerifyResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_VERIFY_TIMEOUT_MS;
  return new Promise((resolvePromise, reject) => {
    options.signal?.throwIfAborted();
    const child = spawn(process.execPath, ["--import", TSX_LOADER, CHILD_SCRIPT, path], {
      stdio: ["ignore", "pipe", "pipe"],
      signal: options.signal,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_TAIL)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);

    child.on("error", (error) => {
      clearTimeout(timer);
      if (error.name === "AbortError") return reject(error);
      resolvePromise({ ok: false, reason: `could not start the verifier: ${error.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (options.signal?.aborted) return reject(options.signal.reason);
      if (timedOut) {
        return resolvePromise({ ok: false, reason: `loading the model did not finish within ${timeoutMs / 1000} s` });
      }
      const reported = parseResult(stdout);
      if (code === 0 && reported) return resolvePromise(reported);
      resolvePromise({ ok: false, reason: crashReason(code, signal, stderr) });
    });
  });
}

function parseResult(stdout: string): VerifyResult | null {
  const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
  if (line === undefined) return null;
  try {
    return JSON.parse(line.slice(RESULT_PREFIX.length)) as VerifyResult;
  } catch {
    return null;
  }
}

function crashReason(code: number | null, signal: NodeJS.Signals | null, stderr: string): string {
  const aborted = signal === "SIGABRT" || code === 134;
  const how = aborted
    ? "llama.cpp aborted while loading it (the file is malformed, e.g. missing hyperparameters or duplicate tokens)"
    : signal
      ? `the loader was killed by ${signal}`
      : `the loader exited with code ${code}`;
  const detail = lastMeaningfulLine(stderr);
  return detail ? `${how}: ${detail}` : how;
}

/** The assertion or error text llama.cpp printed last, e.g. "GGML_ASSERT(n_ff > 0) failed". */
function lastMeaningfulLine(stderr: string): string | null {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const assertion = lines.findLast((l) => /GGML_ASSERT|error|failed|abort/i.test(l));
  const line = assertion ?? lines.at(-1);
  // "/home/runner/work/…/llama-vocab.cpp:2501: GGML_ASSERT(…)" → "llama-vocab.cpp:2501: GGML_ASSERT(…)"
  return line === undefined ? null : line.replace(/^\S*\/(?=[^/\s]+:\d+:)/, "").slice(0, 500);
}

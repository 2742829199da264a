/**
 * Child process of verify.ts: loads one GGUF file with llama.cpp and prints a result line.
 * It runs in its own process because some malformed files (a missing
 * `llama.feed_forward_length` or `llama.attention.head_count`, duplicate token texts) make
 * llama.cpp abort() instead of returning an error, which would take any host process down.
 *
 * Usage: node --import tsx verifyChild.ts <file.gguf>
 * Output: one line `RESULT_PREFIX + JSON` on stdout, `{ok: true, info}` or `{ok: false, reason}`.
 */
import { setTimeout as delay } from "node:timers/promises";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { readGgufSummary } from "./ggufInfo.ts";
import { RESULT_PREFIX, type VerifyResult } from "./verifyProtocol.ts";

async function verify(path: string): Promise<VerifyResult> {
  let info;
  try {
    info = await readGgufSummary(path);
  } catch (error) {
    return { ok: false, reason: `not a readable GGUF file: ${message(error)}` };
  }
  // llama.cpp's own error lines say *why* a load failed ("tensor data is not within file bounds");
  // its exception only says that it failed.
  const llamaErrors: string[] = [];
  const llama = await getLlama({
    gpu: false,
    build: "never",
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    logger: (_level, text) => llamaErrors.push(text.trim()),
  });
  let failure: unknown = null;
  try {
    const model = await llama.loadModel({
      modelPath: path,
      gpuLayers: 0,
      useMmap: true,
      // Reads tensor data only when used: a multi-gigabyte file is checked without reading it all.
      lazyMode: true,
      // Verification must not be refused for a model the operator will run with other settings.
      ignoreMemorySafetyChecks: true,
    });
    // A context builds the compute graph, which is where wrong shapes and hyperparameters show.
    const context = await model.createContext({ contextSize: 64, threads: 1, sequences: 1, ignoreMemorySafetyChecks: true });
    await context.dispose();
    await model.dispose();
  } catch (error) {
    failure = error;
  } finally {
    await llama.dispose();
  }
  if (failure === null) return { ok: true, info };
  // Log lines travel from llama.cpp's threads through the event loop and can trail the rejection.
  await delay(200);
  const why = llamaErrors.filter((l) => l !== "").slice(-2).join("; ");
  return { ok: false, reason: `llama.cpp cannot load it: ${message(failure)}${why ? ` (${why})` : ""}` };
}

/** Error text fit for a terminal: a corrupt file can put arbitrary bytes into parser messages. */
function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/[^\x20-\x7e\u00a0-\uffef]|\ufffd/g, "?");
}

const path = process.argv[2];
const result: VerifyResult = path ? await verify(path) : { ok: false, reason: "no file given" };
process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + "\n");

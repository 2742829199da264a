/**
 * The named models Sputnik generates, and `ensureModel`, which writes one on first use.
 *
 * What node-llama-cpp 3.21.1 returns for a scripted model (measured; scripted-models.test.ts
 * asserts it). The embedded R1-Distill template makes it pick DeepSeekChatWrapper, whose prompt
 * ends with `<｜Assistant｜>`; the model then emits what a real R1 distill emits:
 *
 *     <think> "\n" reasoning "\n" </think> "\n\n" answer <｜end▁of▁sentence｜>
 *
 * - Thought: the `onResponseChunk` chunks with `type: "segment"`, `segmentType: "thought"` join
 *   to `"\n" + reasoning + "\n"` (tags not included). The first such chunk is empty and carries
 *   `segmentStartTime`; the last is empty and carries `segmentEndTime`. In `LlamaChat`'s
 *   `fullResponse` it is `{type: "segment", segmentType: "thought", text, ended: true, raw}`.
 * - Response: `responseText` (session) / `response` (LlamaChat), and the chunks with
 *   `type: undefined`, are `"\n\n" + answer`. A leading empty text chunk comes before the thought.
 *   stopReason is `"eogToken"`.
 * - So `reasoning_content` = thought.trim() and `content` = response.trimStart() are the script
 *   texts exactly (script texts never start or end with whitespace). A streaming engine has to
 *   hold back the content's leading whitespace and the reasoning's trailing whitespace.
 * - Chunk texts are whole characters: node-llama-cpp holds back partial UTF-8 itself, so "你"
 *   (3 byte tokens) or "👋" (4) arrive as one chunk carrying several tokens.
 * - `budgets: { thoughtTokens: N }`: the thought holds the first N generated thought tokens (the
 *   first is "\n": N = 5 gives "\nThe user asks a" for `scripted`), then node-llama-cpp forces
 *   `</think>` and the response is still `"\n\n" + answer`. N = 0: empty thought, same response.
 * - With a `grammar`, node-llama-cpp opens no thought: thought "", response = the grammar-shaped
 *   answer with no leading newlines (`scripted-json` gives exactly its JSON).
 * - A prompt rendered from the Jinja template (ending `<think>\n`) continues with
 *   reasoning + "\n</think>\n\n" + answer.
 * - The same holds on later turns, with any user/system text, with parallel sequences, flash
 *   attention, temperature 1.5, top-p and repeat penalties (the scripted logit is 100, others 0).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AUDIT_SCRIPTS, buildAuditModel } from "./auditScripts.ts";
import { buildBenchModel } from "./bench.ts";
import { buildEmbedModel } from "./embedModel.ts";
import { readMetadataString } from "./header.ts";
import { buildScriptedModel, type Script } from "./scripted.ts";
import { FEATURE_SCRIPTS, MODEL_SCRIPTS } from "./scripts.ts";
import { buildToolModel, TOOL_SCRIPTS } from "./toolScripts.ts";
import type { GgufWriter } from "./writer.ts";

export { FEATURE_SCRIPTS, MODEL_SCRIPTS, PULL_HINT } from "./scripts.ts";
export type { Script } from "./scripted.ts";
export { TOOL_SCRIPTS } from "./toolScripts.ts";
export { AUDIT_SCRIPTS } from "./auditScripts.ts";

/** Bump when the construction changes so cached files are rebuilt. */
export const GENERATOR_VERSION = "1";
const STAMP_KEY = "sputnik.generator";

export const MODEL_NAMES: readonly string[] = [...Object.keys(MODEL_SCRIPTS), ...Object.keys(FEATURE_SCRIPTS), ...Object.keys(TOOL_SCRIPTS), ...Object.keys(AUDIT_SCRIPTS), "bench", "embed"];

export const DEFAULT_MODEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../.cache/models");

export class UnknownModelError extends Error {
  constructor(name: string) {
    super(`unknown generated model "${name}" (known: ${MODEL_NAMES.join(", ")})`);
  }
}

/** What node-llama-cpp's thought segment and response text are for a script (see above). */
export function rawModelTexts(script: Script): { thought: string; response: string } {
  return { thought: `\n${script.reasoning}\n`, response: `\n\n${script.answer}` };
}

/** The stamp stored in a model's metadata; a file with another stamp is stale. */
export function modelStamp(name: string): string {
  if (name === "bench") return `sputnik-gguf/${GENERATOR_VERSION}/bench`;
  if (name === "embed") return `sputnik-gguf/${GENERATOR_VERSION}/embed`;
  const script: unknown = Object.hasOwn(TOOL_SCRIPTS, name) ? TOOL_SCRIPTS[name] : Object.hasOwn(AUDIT_SCRIPTS, name) ? AUDIT_SCRIPTS[name] : scriptOf(name);
  const digest = createHash("sha256").update(JSON.stringify(script)).digest("hex").slice(0, 16);
  return `sputnik-gguf/${GENERATOR_VERSION}/${name}/${digest}`;
}

/** Builds a named model's GGUF, ready to write. */
export function buildModel(name: string): GgufWriter {
  if (name === "bench") return buildBenchModel(modelStamp(name));
  if (name === "embed") return buildEmbedModel(modelStamp(name));
  if (Object.hasOwn(TOOL_SCRIPTS, name)) return buildToolModel(name, TOOL_SCRIPTS[name]!, modelStamp(name));
  if (Object.hasOwn(AUDIT_SCRIPTS, name)) return buildAuditModel(name, AUDIT_SCRIPTS[name]!, modelStamp(name));
  return buildScriptedModel(name, scriptOf(name), modelStamp(name));
}

const pending = new Map<string, Promise<string>>();

/**
 * Returns the path of `<dir>/<name>.gguf`, generating it first if it is missing or stale.
 * Safe under concurrency: callers in one process share one build, and separate processes each
 * write a temporary file and rename it into place atomically (identical bytes either way).
 */
export async function ensureModel(name: string, dir: string = DEFAULT_MODEL_DIR): Promise<string> {
  if (!MODEL_NAMES.includes(name)) throw new UnknownModelError(name);
  const file = path.resolve(dir, `${name}.gguf`);
  let job = pending.get(file);
  if (!job) {
    job = generateIfStale(name, file).finally(() => pending.delete(file));
    pending.set(file, job);
  }
  return job;
}

async function generateIfStale(name: string, file: string): Promise<string> {
  const stamp = modelStamp(name);
  if ((await readMetadataString(file, STAMP_KEY).catch(() => undefined)) === stamp) return file;
  await writeModel(name, file);
  return file;
}

/** Writes a named model to `file` (through a temporary file and an atomic rename); returns its size. */
export async function writeModel(name: string, file: string): Promise<number> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await buildModel(name).write(temp);
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  return (await stat(file)).size;
}

function scriptOf(name: string): Script {
  const script = Object.hasOwn(MODEL_SCRIPTS, name) ? MODEL_SCRIPTS[name] : Object.hasOwn(FEATURE_SCRIPTS, name) ? FEATURE_SCRIPTS[name] : undefined;
  if (!script) throw new UnknownModelError(name);
  return script;
}

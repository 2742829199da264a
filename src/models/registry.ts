/**
 * The models directory: which GGUF files it holds, and the only way to turn a model name
 * (which may come from a user, an API request or a config file) into a file path.
 * Names are plain file-name stems, so a name can never point outside the directory.
 */
import { lstatSync, readdirSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { ModelError } from "./errors.ts";
import { readGgufSummary, type GgufSummary } from "./ggufInfo.ts";

export const MODEL_EXTENSION = ".gguf";

/** Letters, digits, `.`, `_`, `-`; starts with a letter or digit; at most 200 characters. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export interface ModelEntry extends Partial<GgufSummary> {
  name: string;
  path: string;
  sizeBytes: number;
  /** Set when the file is listed but its header could not be read or it is not usable. */
  error?: string;
}

/**
 * Checks a model name and returns it without a trailing `.gguf` (both "qwen" and "qwen.gguf"
 * are accepted). Throws `invalid_name` for anything that is not a plain file-name stem.
 */
export function validateModelName(name: unknown): string {
  if (typeof name !== "string" || name === "") {
    throw new ModelError("invalid_name", "Model name must be a non-empty string.");
  }
  if (name.includes("\0")) throw new ModelError("invalid_name", "Model name must not contain NUL characters.");
  if (name.includes("/") || name.includes("\\") || isAbsolute(name)) {
    throw new ModelError("invalid_name", `Model name ${JSON.stringify(name)} must not contain path separators.`);
  }
  const stem = name.toLowerCase().endsWith(MODEL_EXTENSION) ? name.slice(0, -MODEL_EXTENSION.length) : name;
  if (!MODEL_NAME.test(stem)) {
    throw new ModelError(
      "invalid_name",
      `Model name ${JSON.stringify(name)} is invalid: use letters, digits, ".", "_" and "-", starting with a letter or digit (at most 200 characters).`,
    );
  }
  return stem;
}

/** Where the file of a model with this name lives (or will live), without checking that it exists. */
export function modelFilePath(modelsDir: string, name: string): string {
  return join(resolve(modelsDir), validateModelName(name) + MODEL_EXTENSION);
}

/**
 * Absolute path of an existing model file. Throws `invalid_name` for a bad name, `not_found`
 * when there is no such model, and `outside_models_dir` for a symlink that leads out of the
 * directory (a symlink between files inside it is fine).
 */
export function resolveModelPath(modelsDir: string, name: string): string {
  const path = modelFilePath(modelsDir, name);
  let realDir: string;
  let realFile: string;
  try {
    realDir = realpathSync(resolve(modelsDir));
    realFile = realpathSync(path);
  } catch (error) {
    if (isNotFound(error)) {
      throw new ModelError("not_found", `Model ${JSON.stringify(validateModelName(name))} is not in ${resolve(modelsDir)}.`);
    }
    throw error;
  }
  if (!isInside(realDir, realFile)) {
    throw new ModelError(
      "outside_models_dir",
      `Model ${JSON.stringify(validateModelName(name))} is a link to ${realFile}, outside the models directory ${realDir}.`,
    );
  }
  if (!statSync(realFile).isFile()) {
    throw new ModelError("not_found", `Model ${JSON.stringify(validateModelName(name))} is not a regular file.`);
  }
  return path;
}

/**
 * Every `*.gguf` file in the directory, sorted by name, with header metadata. A file whose
 * header cannot be read is still listed, with `error` set, so an operator sees it.
 * A missing directory is an empty list.
 */
export async function listModels(modelsDir: string): Promise<ModelEntry[]> {
  const dir = resolve(modelsDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const entries: ModelEntry[] = [];
  for (const fileName of names.sort()) {
    if (!fileName.endsWith(MODEL_EXTENSION)) continue;
    const stem = fileName.slice(0, -MODEL_EXTENSION.length);
    if (!MODEL_NAME.test(stem)) continue; // not addressable by name, so not a model of ours
    const path = join(dir, fileName);
    entries.push(await describe(dir, stem, path));
  }
  return entries;
}

async function describe(dir: string, name: string, path: string): Promise<ModelEntry> {
  let resolved: string;
  try {
    resolved = resolveModelPath(dir, name);
  } catch (error) {
    const sizeBytes = lstatSync(path, { throwIfNoEntry: false })?.size ?? 0;
    return { name, path, sizeBytes, error: error instanceof Error ? error.message : String(error) };
  }
  const sizeBytes = statSync(resolved).size;
  try {
    return { name, path: resolved, sizeBytes, ...(await readGgufSummary(resolved)) };
  } catch (error) {
    return { name, path: resolved, sizeBytes, error: `unreadable GGUF header: ${errorMessage(error)}` };
  }
}

function isInside(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel !== "" && !rel.startsWith(".." + sep) && rel !== ".." && !isAbsolute(rel);
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Turns an `hf:` source into the URL of one GGUF file, using the Hugging Face Hub API
 * (`GET /api/models/:user/:repo`, whose `siblings` list every file of the repository).
 */
import { ggufFileQuantNames } from "node-llama-cpp";
import { ModelError } from "./errors.ts";
import { getJson } from "./http.ts";
import type { NetworkPolicy } from "./netguard.ts";
import type { PullSource } from "./source.ts";

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";
const REVISION = "main";

export interface HfContext {
  endpoint: string;
  token?: string;
  policy: NetworkPolicy;
  signal?: AbortSignal;
}

export interface HfFile {
  /** Path inside the repository, e.g. "Q4_K_M/model-Q4_K_M.gguf". */
  filePath: string;
  url: URL;
}

interface RepoFile {
  path: string;
  /** Stem without directories, `.gguf` and the split suffix. */
  stem: string;
  split: { part: number; of: number } | null;
  quant: string | null;
}

export function hfEndpoint(explicit?: string): string {
  const endpoint = explicit ?? process.env.SPUTNIK_HF_ENDPOINT ?? DEFAULT_HF_ENDPOINT;
  try {
    return new URL(endpoint).href.replace(/\/+$/, "");
  } catch {
    throw new ModelError("bad_source", `Invalid Hugging Face endpoint ${JSON.stringify(endpoint)}.`);
  }
}

function hfFileUrl(endpoint: string, repo: string, filePath: string): URL {
  const encoded = [...repo.split("/"), "resolve", REVISION, ...filePath.split("/")].map(encodeURIComponent).join("/");
  return new URL(`${endpoint}/${encoded}`);
}

export async function resolveHfFile(source: Extract<PullSource, { kind: "hf" | "hf-file" }>, ctx: HfContext): Promise<HfFile> {
  if (source.kind === "hf-file") {
    const file = describeFile(source.filePath);
    if (file.split) throw splitError([file]);
    return { filePath: source.filePath, url: hfFileUrl(ctx.endpoint, source.repo, source.filePath) };
  }
  const files = (await listRepoFiles(source.repo, ctx)).map(describeFile).filter((f) => !isProjector(f));
  const chosen = pickFile(source.repo, source.quant, files);
  return { filePath: chosen.path, url: hfFileUrl(ctx.endpoint, source.repo, chosen.path) };
}

async function listRepoFiles(repo: string, ctx: HfContext): Promise<string[]> {
  const url = `${ctx.endpoint}/api/models/${repo.split("/").map(encodeURIComponent).join("/")}`;
  const body = await getJson(url, {
    policy: ctx.policy,
    signal: ctx.signal,
    bearer: ctx.token ? { origin: new URL(ctx.endpoint).origin, token: ctx.token } : undefined,
  });
  const siblings = (body as { siblings?: unknown } | null)?.siblings;
  if (!Array.isArray(siblings)) {
    throw new ModelError("http_error", `Unexpected answer from the Hugging Face API for ${repo}: no file list.`);
  }
  return siblings
    .map((s) => (s as { rfilename?: unknown })?.rfilename)
    .filter((name): name is string => typeof name === "string" && name.toLowerCase().endsWith(".gguf"));
}

function pickFile(repo: string, quant: string | null, files: RepoFile[]): RepoFile {
  if (files.length === 0) throw new ModelError("no_matching_file", `Repository ${repo} has no .gguf files.`);
  const candidates = quant === null ? files : files.filter((f) => stemHasQuant(f.stem, quant));
  const single = candidates.filter((f) => f.split === null);
  if (single.length === 1) return single[0];
  if (single.length > 1) {
    throw new ModelError(
      "ambiguous_file",
      `${quant === null ? `Repository ${repo} has several GGUF files` : `Several files in ${repo} match ${quant}`}: ` +
        `${single.map((f) => f.path).join(", ")}. ` +
        (quant === null ? `Add a quantization (${availableQuants(files)}) or name the file: ` : "Name the file: ") +
        `hf:${repo}/<file>.gguf`,
    );
  }
  if (candidates.length > 0) throw splitError(candidates);
  throw new ModelError(
    "no_matching_file",
    `No GGUF file in ${repo} matches ${JSON.stringify(quant)}. Available: ${availableQuants(files)}.`,
  );
}

/** "Q4_K_M, Q8_0, Q2_K (split into 3 parts, unsupported)". */
function availableQuants(files: RepoFile[]): string {
  const labels = new Set<string>();
  for (const f of files) {
    const label = f.quant ?? f.path;
    labels.add(f.split ? `${label} (split into ${f.split.of} parts, unsupported)` : label);
  }
  return [...labels].join(", ");
}

function splitError(files: RepoFile[]): ModelError {
  const parts = files[0].split?.of ?? files.length;
  return new ModelError(
    "split_model",
    `${files[0].path} is one part of a model split into ${parts} files; sputnik pull only handles single-file GGUFs. ` +
      "Pick another quantization, or merge the parts with llama.cpp's `llama-gguf-split --merge` and put the result in the models directory.",
  );
}

const SPLIT_SUFFIX = /-(\d{5})-of-(\d{5})$/i;
const KNOWN_QUANTS = [...ggufFileQuantNames].sort((a, b) => b.length - a.length);

function describeFile(path: string): RepoFile {
  let stem = (path.split("/").pop() ?? path).replace(/\.gguf$/i, "");
  const split = SPLIT_SUFFIX.exec(stem);
  if (split) stem = stem.slice(0, -split[0].length);
  return {
    path,
    stem,
    split: split ? { part: Number(split[1]), of: Number(split[2]) } : null,
    quant: KNOWN_QUANTS.find((q) => stemHasQuant(stem, q)) ?? null,
  };
}

/**
 * "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M" has Q4_K_M (and not Q4_K nor K_M): the quantization is
 * the whole stem or its last "-" or "." separated suffix, compared case-insensitively.
 */
function stemHasQuant(stem: string, quant: string): boolean {
  const s = stem.toLowerCase();
  const q = quant.toLowerCase();
  return s === q || s.endsWith(`-${q}`) || s.endsWith(`.${q}`);
}

/** Vision projector files sit next to the LLM in many repositories and are not chat models. */
function isProjector(file: RepoFile): boolean {
  return /^mmproj/i.test(file.path.split("/").pop() ?? "");
}

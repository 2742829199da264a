/**
 * Parses what a user types after `sputnik pull`:
 *   hf:user/repo:Q4_K_M           a quantization, resolved through the Hugging Face API
 *   hf:user/repo                  the repository's only single-file GGUF
 *   hf:user/repo/dir/file.gguf    one file of a repository
 *   https://host/path/model.gguf  any URL
 */
import { ModelError } from "./errors.ts";

export type PullSource =
  | { kind: "hf"; repo: string; quant: string | null }
  | { kind: "hf-file"; repo: string; filePath: string }
  | { kind: "url"; url: URL };

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const QUANT = /^[A-Za-z0-9_]{1,40}$/;

export function parseSource(text: string): PullSource {
  const source = text.trim();
  if (/^https?:\/\//i.test(source)) {
    try {
      return { kind: "url", url: new URL(source) };
    } catch {
      throw new ModelError("bad_source", `Invalid URL: ${source}`);
    }
  }
  if (!source.toLowerCase().startsWith("hf:")) {
    throw new ModelError("bad_source", `Unsupported source ${JSON.stringify(source)}: use hf:user/repo:QUANT, hf:user/repo/file.gguf or an https:// URL.`);
  }
  const rest = source.slice(3);
  const colon = rest.indexOf(":");
  const path = colon === -1 ? rest : rest.slice(0, colon);
  const quant = colon === -1 ? null : rest.slice(colon + 1);
  const parts = path.split("/");
  if (parts.length < 2 || !REPO_PART.test(parts[0]) || !REPO_PART.test(parts[1])) {
    throw new ModelError("bad_source", `Invalid Hugging Face source ${JSON.stringify(source)}: expected hf:user/repo:QUANT or hf:user/repo/file.gguf.`);
  }
  const repo = `${parts[0]}/${parts[1]}`;
  if (parts.length === 2) {
    if (quant !== null && !QUANT.test(quant)) {
      throw new ModelError("bad_source", `Invalid quantization ${JSON.stringify(quant)} in ${JSON.stringify(source)}.`);
    }
    return { kind: "hf", repo, quant };
  }
  if (quant !== null) {
    throw new ModelError("bad_source", `Give either a file or a quantization, not both: ${JSON.stringify(source)}.`);
  }
  const fileParts = parts.slice(2);
  if (fileParts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\") || p.includes("\0"))) {
    throw new ModelError("bad_source", `Invalid file path in ${JSON.stringify(source)}.`);
  }
  if (!fileParts[fileParts.length - 1].toLowerCase().endsWith(".gguf")) {
    throw new ModelError("bad_source", `${JSON.stringify(source)} does not name a .gguf file.`);
  }
  return { kind: "hf-file", repo, filePath: fileParts.join("/") };
}

/** The last path segment of a URL, decoded ("" if there is none or it cannot be decoded). */
export function urlFileName(url: URL): string {
  const last = url.pathname.split("/").pop() ?? "";
  try {
    return decodeURIComponent(last);
  } catch {
    return "";
  }
}

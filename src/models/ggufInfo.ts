/**
 * Summary of a GGUF file read from its header only: the tensor data (gigabytes) is never touched,
 * so listing a models directory stays cheap.
 */
import { GgufFileType, readGgufFileInfo } from "node-llama-cpp";

export interface GgufSummary {
  /** `general.architecture`, e.g. "llama", "qwen2". */
  architecture: string;
  /** From `general.file_type`, e.g. "Q4_K_M", "F16"; null when the file does not say. */
  quantization: string | null;
  /** `<arch>.context_length`: the context the model was trained for. */
  contextLength: number | null;
  /** Sum of the elements of all tensors; null when the header has no tensor infos. */
  parameterCount: number | null;
  /** `general.name`, when present. */
  displayName: string | null;
}

/*
 * Large string arrays make up most of a header (a 150k-token vocabulary is megabytes);
 * nothing here needs them, so the parser skips them.
 */
const SKIPPED_KEYS = [
  "tokenizer.ggml.tokens",
  "tokenizer.ggml.merges",
  "tokenizer.ggml.token_type",
  "tokenizer.ggml.scores",
  "tokenizer.chat_template",
];

export async function readGgufSummary(path: string): Promise<GgufSummary> {
  const info = await readGgufFileInfo(path, {
    sourceType: "filesystem",
    ignoreKeys: SKIPPED_KEYS,
    logWarnings: false,
    spliceSplitFiles: false,
  });
  const general = info.metadata?.general as Record<string, unknown> | undefined;
  const architecture = general?.architecture;
  if (typeof architecture !== "string" || architecture === "") {
    throw new Error("GGUF header has no general.architecture");
  }
  const archMeta = (info.metadata as unknown as Record<string, unknown>)[architecture] as
    | Record<string, unknown>
    | undefined;
  return {
    architecture,
    quantization: fileTypeName(general?.file_type),
    contextLength: toNumberOrNull(archMeta?.context_length),
    parameterCount: countParameters(info.tensorInfo),
    displayName: typeof general?.name === "string" ? general.name : null,
  };
}

/** "MOSTLY_Q4_K_M" → "Q4_K_M", "ALL_F32" → "F32"; unknown numbers are shown as such. */
export function fileTypeName(fileType: unknown): string | null {
  const n = toNumberOrNull(fileType);
  if (n === null) return null;
  const name = (GgufFileType as unknown as Record<number, string | undefined>)[n];
  if (name === undefined) return `file_type ${n}`;
  return name.replace(/^(MOSTLY|ALL)_/, "");
}

function countParameters(tensors: readonly { dimensions: readonly (number | bigint)[] }[] | undefined): number | null {
  if (tensors === undefined || tensors.length === 0) return null;
  let total = 0;
  for (const tensor of tensors) {
    let elements = 1;
    for (const dim of tensor.dimensions) elements *= Number(dim);
    total += elements;
  }
  return total;
}

function toNumberOrNull(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "bigint") return Number(value);
  return null;
}

/**
 * Test support: tiny llama-architecture GGUF files (≈100 KiB, deterministic), valid or broken
 * in the specific ways the pull path must survive. Built with the project's GGUF writer.
 */
import { GgmlType, GgufWriter, f32Bytes } from "../../src/gguf/writer.ts";

export interface FixtureOptions {
  /** Leave out `llama.feed_forward_length`: llama.cpp aborts the process on load. */
  omitFeedForwardLength?: boolean;
  /** Give two tokens the same text: llama.cpp aborts the process on load. */
  duplicateToken?: boolean;
  /** `general.name`, to tell fixtures apart. */
  name?: string;
}

const N_EMBD = 32;
const N_HEAD = 2;
const N_FF = 64;
const N_CTX = 256;

/** Writes the fixture to `path` and returns its bytes. */
export async function writeTinyModel(path: string, options: FixtureOptions = {}): Promise<number> {
  const tokens = byteTokens();
  if (options.duplicateToken) tokens.push(tokens[65]);
  tokens.push("<|endoftext|>");
  const types = tokens.map((_, i) => (i === tokens.length - 1 ? 3 : 1));
  const vocab = tokens.length;

  const w = new GgufWriter()
    .set("general.architecture", "string", "llama")
    .set("general.name", "string", options.name ?? "tiny-test")
    .set("general.file_type", "u32", 0)
    .set("llama.context_length", "u32", N_CTX)
    .set("llama.embedding_length", "u32", N_EMBD)
    .set("llama.block_count", "u32", 1)
    .set("llama.attention.head_count", "u32", N_HEAD)
    .set("llama.attention.head_count_kv", "u32", N_HEAD)
    .set("llama.rope.dimension_count", "u32", N_EMBD / N_HEAD)
    .set("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5)
    .set("tokenizer.ggml.model", "string", "gpt2")
    .set("tokenizer.ggml.pre", "string", "default")
    .setArray("tokenizer.ggml.tokens", "string", tokens)
    .setArray("tokenizer.ggml.token_type", "i32", types)
    .setArray("tokenizer.ggml.merges", "string", [])
    .set("tokenizer.ggml.bos_token_id", "u32", vocab - 1)
    .set("tokenizer.ggml.eos_token_id", "u32", vocab - 1);
  if (!options.omitFeedForwardLength) w.set("llama.feed_forward_length", "u32", N_FF);

  let seed = 1;
  const tensor = (name: string, dims: number[]) => {
    const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = Math.sin(seed++ * 12.9898) * 0.02;
    w.addTensor({ name, dims, type: GgmlType.F32, data: () => [f32Bytes(values)] });
  };
  const norm = (name: string) => w.addTensor({ name, dims: [N_EMBD], type: GgmlType.F32, data: () => [f32Bytes(new Float32Array(N_EMBD).fill(1))] });

  tensor("token_embd.weight", [N_EMBD, vocab]);
  norm("output_norm.weight");
  norm("blk.0.attn_norm.weight");
  tensor("blk.0.attn_q.weight", [N_EMBD, N_EMBD]);
  tensor("blk.0.attn_k.weight", [N_EMBD, N_EMBD]);
  tensor("blk.0.attn_v.weight", [N_EMBD, N_EMBD]);
  tensor("blk.0.attn_output.weight", [N_EMBD, N_EMBD]);
  norm("blk.0.ffn_norm.weight");
  tensor("blk.0.ffn_gate.weight", [N_EMBD, N_FF]);
  tensor("blk.0.ffn_up.weight", [N_EMBD, N_FF]);
  tensor("blk.0.ffn_down.weight", [N_FF, N_EMBD]);
  return w.write(path);
}

/** GPT-2's byte-to-unicode table: the 256 single-byte tokens of a byte-level BPE vocabulary. */
function byteTokens(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const tokens = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    tokens[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return tokens;
}

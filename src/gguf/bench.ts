/**
 * The benchmark model: random weights in the shape of Qwen2.5-0.5B (as a llama: 24 layers, hidden
 * 896, 14 heads / 2 KV heads of 64, FFN 4864, tied embeddings) with a 151,936-token byte-level
 * vocabulary, in Q8_0 (~525 MB). Compute cost does not depend on weight values, so throughput
 * and memory figures are realistic; the text it produces is gibberish.
 *
 * Deterministic and fast: every tensor is tiled from one seeded pool of Q8_0 blocks, so the same
 * bytes come out on every run and generation is bounded by disk speed.
 */
import { addTokenizer, buildVocabulary, BYTE_TO_CHAR, TokenType, type Vocabulary } from "./tokenizer.ts";
import { f32Bytes, fromF16Bits, GgmlType, GgufWriter, Q8_0_BLOCK, Q8_0_BLOCK_BYTES, toF16Bits } from "./writer.ts";
import { mulberry32 } from "./random.ts";

export const BENCH_SHAPE = {
  layers: 24,
  embedding: 896,
  heads: 14,
  kvHeads: 2,
  headDim: 64,
  feedForward: 4864,
  vocab: 151_936,
  /** Ordinary (byte + merged) tokens, as in the Qwen2 vocabulary; specials and padding follow. */
  normalTokens: 151_643,
  contextLength: 32_768,
} as const;

/** Standard deviation of every weight: small enough that activations stay finite through 24 layers. */
const WEIGHT_STD = 0.02;
/** Rows of special and partial-UTF-8 tokens are scaled down so greedy decoding never picks them. */
const SUPPRESSED_ROW_SCALE = 1 / 64;
/** Prime number of blocks in the pool, so tiles do not line up with row lengths. */
const POOL_BLOCKS = 65_521;
const SEED = 0x5eed_b3c4;

export function buildBenchModel(stamp: string): GgufWriter {
  const s = BENCH_SHAPE;
  const vocab = buildVocabulary({ normalSize: s.normalTokens, totalSize: s.vocab });
  const pool = blockPool();
  let tensorIndex = 0;

  const w = new GgufWriter();
  w.set("general.architecture", "string", "llama")
    .set("general.name", "string", "sputnik-bench")
    .set("general.file_type", "u32", 7) // LLAMA_FTYPE_MOSTLY_Q8_0
    .set("sputnik.generator", "string", stamp)
    .set("llama.context_length", "u32", s.contextLength)
    .set("llama.embedding_length", "u32", s.embedding)
    .set("llama.block_count", "u32", s.layers)
    .set("llama.feed_forward_length", "u32", s.feedForward)
    .set("llama.attention.head_count", "u32", s.heads)
    .set("llama.attention.head_count_kv", "u32", s.kvHeads)
    .set("llama.attention.layer_norm_rms_epsilon", "f32", 1e-6)
    .set("llama.rope.dimension_count", "u32", s.headDim)
    .set("llama.rope.freq_base", "f32", 1_000_000)
    .set("llama.vocab_size", "u32", s.vocab);
  addTokenizer(w, vocab);

  const q8 = (name: string, dims: [number, number], rowScale?: (row: number) => number) => {
    const start = (tensorIndex++ * 7919) % POOL_BLOCKS;
    w.addTensor({ name, dims, type: GgmlType.Q8_0, data: () => tiles(pool, start, dims, rowScale) });
  };
  const ones = (name: string, n: number) => {
    w.addTensor({ name, dims: [n], type: GgmlType.F32, data: () => [f32Bytes(new Float32Array(n).fill(1))] });
  };

  const suppressed = suppressedTokens(vocab);
  q8("token_embd.weight", [s.embedding, s.vocab], (row) => (suppressed.has(row) ? SUPPRESSED_ROW_SCALE : 1));
  const qkv = s.kvHeads * s.headDim;
  for (let l = 0; l < s.layers; l++) {
    ones(`blk.${l}.attn_norm.weight`, s.embedding);
    q8(`blk.${l}.attn_q.weight`, [s.embedding, s.heads * s.headDim]);
    q8(`blk.${l}.attn_k.weight`, [s.embedding, qkv]);
    q8(`blk.${l}.attn_v.weight`, [s.embedding, qkv]);
    q8(`blk.${l}.attn_output.weight`, [s.heads * s.headDim, s.embedding]);
    ones(`blk.${l}.ffn_norm.weight`, s.embedding);
    q8(`blk.${l}.ffn_gate.weight`, [s.embedding, s.feedForward]);
    q8(`blk.${l}.ffn_up.weight`, [s.embedding, s.feedForward]);
    q8(`blk.${l}.ffn_down.weight`, [s.feedForward, s.embedding]);
  }
  ones("output_norm.weight", s.embedding);
  // No output.weight: llama.cpp ties the output head to token_embd, as in Qwen2.5-0.5B.
  return w;
}

/** Tokens greedy decoding must avoid: every non-normal token and the lone bytes ≥ 0x80. */
function suppressedTokens(vocab: Vocabulary): Set<number> {
  const out = new Set<number>();
  vocab.types.forEach((type, id) => type !== TokenType.NORMAL && out.add(id));
  for (let b = 0x80; b < 0x100; b++) out.add(vocab.ids.get(BYTE_TO_CHAR[b])!);
  return out;
}

/** A seeded pool of Q8_0 blocks whose values have standard deviation WEIGHT_STD. */
function blockPool(): Buffer {
  const random = mulberry32(SEED);
  const pool = Buffer.alloc(POOL_BLOCKS * Q8_0_BLOCK_BYTES);
  // Uniform int8 quants in [-127, 127] have std √((255² − 1) / 12) ≈ 73.6.
  const scale = toF16Bits(WEIGHT_STD / Math.sqrt((255 ** 2 - 1) / 12));
  for (let b = 0; b < POOL_BLOCKS; b++) {
    const at = b * Q8_0_BLOCK_BYTES;
    pool.writeUInt16LE(scale, at);
    for (let i = 0; i < Q8_0_BLOCK; i++) pool.writeInt8(Math.floor(random() * 255) - 127, at + 2 + i);
  }
  return pool;
}

/** Yields a Q8_0 tensor's bytes by tiling the pool from `start`, scaling whole rows if asked. */
function* tiles(pool: Buffer, start: number, dims: [number, number], rowScale?: (row: number) => number): Generator<Uint8Array> {
  const blocksPerRow = dims[0] / Q8_0_BLOCK;
  const rowsPerChunk = Math.max(1, Math.floor((1 << 20) / (blocksPerRow * Q8_0_BLOCK_BYTES)));
  let block = start;
  for (let row = 0; row < dims[1]; row += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, dims[1] - row);
    const chunk = Buffer.alloc(rows * blocksPerRow * Q8_0_BLOCK_BYTES);
    let filled = 0;
    while (filled < chunk.length) {
      const from = block * Q8_0_BLOCK_BYTES;
      const n = Math.min(chunk.length - filled, pool.length - from);
      pool.copy(chunk, filled, from, from + n);
      filled += n;
      block = (block + n / Q8_0_BLOCK_BYTES) % POOL_BLOCKS;
    }
    if (rowScale) {
      for (let r = 0; r < rows; r++) {
        const factor = rowScale(row + r);
        if (factor === 1) continue;
        for (let b = 0; b < blocksPerRow; b++) {
          const at = (r * blocksPerRow + b) * Q8_0_BLOCK_BYTES;
          chunk.writeUInt16LE(toF16Bits(fromF16Bits(chunk.readUInt16LE(at)) * factor), at);
        }
      }
    }
    yield chunk;
  }
}


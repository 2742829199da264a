/**
 * The embedding test model ("embed"): a tiny llama with seeded random weights (2 layers, hidden
 * 64, 4 heads, F32, ~150 KiB) for node-llama-cpp's embedding context. Its vectors mean nothing, but
 * they are real: the same text always gives the same vector and different texts different ones.
 *
 * Why not a scripted model: their attention and FFN outputs are zero (the residual carries only
 * the current token), and node-llama-cpp embeds a text as the hidden state of its LAST token —
 * after the end token it appends — so every text got the same vector. Here attention mixes the
 * whole input into that last state.
 */
import { mulberry32 } from "./random.ts";
import { addTokenizer, buildVocabulary, wordPieces } from "./tokenizer.ts";
import { f32Bytes, GgmlType, GgufWriter } from "./writer.ts";

export const EMBED_SHAPE = { layers: 2, embedding: 64, heads: 4, headDim: 16, feedForward: 128, contextLength: 2048 } as const;

/** Merged word tokens, so ordinary English text takes about one token per word (as with real tokenizers). */
const WORDS = [
  "the", "a", "and", "of", "to", "in", "is", "it", "that", "for", "on", "with", "as", "was", "at", "by", "this", "be", "are", "from",
  "hello", "world", "cat", "dog", "sat", "mat", "search", "document", "answer", "question", "embedding", "vector", "model", "text",
  "goodbye", "red", "green", "blue", "apple", "banana", "river", "mountain", "city", "house", "quick", "brown", "fox", "jumps", "over", "lazy",
];

/** Large enough that attention really mixes tokens; small enough that activations stay finite. */
const WEIGHT_STD = 0.2;
const SEED = 0x0e_b3_dd_ed;

export function buildEmbedModel(stamp: string): GgufWriter {
  const s = EMBED_SHAPE;
  const words: string[] = [];
  for (const word of WORDS) for (const form of [word, ` ${word}`]) words.push(...wordPieces(form));
  const vocab = buildVocabulary({ words: new Set(words) });
  const random = mulberry32(SEED);
  // Uniform in [-√3·std, √3·std]: standard deviation `std`.
  const spread = Math.sqrt(3) * WEIGHT_STD;

  const w = new GgufWriter();
  w.set("general.architecture", "string", "llama")
    .set("general.name", "string", "sputnik-embed")
    .set("general.file_type", "u32", 0) // ALL_F32
    .set("sputnik.generator", "string", stamp)
    .set("llama.context_length", "u32", s.contextLength)
    .set("llama.embedding_length", "u32", s.embedding)
    .set("llama.block_count", "u32", s.layers)
    .set("llama.feed_forward_length", "u32", s.feedForward)
    .set("llama.attention.head_count", "u32", s.heads)
    .set("llama.attention.head_count_kv", "u32", s.heads)
    .set("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5)
    .set("llama.rope.dimension_count", "u32", s.headDim);
  addTokenizer(w, vocab);

  // Values are drawn in the order tensors are added, once, so the bytes are the same on every run.
  const tensor = (name: string, dims: [number, number]) => {
    const values = new Float32Array(dims[0] * dims[1]);
    for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * spread;
    w.addTensor({ name, dims, type: GgmlType.F32, data: () => [f32Bytes(values)] });
  };
  const ones = (name: string, n: number) => {
    w.addTensor({ name, dims: [n], type: GgmlType.F32, data: () => [f32Bytes(new Float32Array(n).fill(1))] });
  };

  tensor("token_embd.weight", [s.embedding, vocab.tokens.length]);
  const width = s.heads * s.headDim;
  for (let l = 0; l < s.layers; l++) {
    ones(`blk.${l}.attn_norm.weight`, s.embedding);
    tensor(`blk.${l}.attn_q.weight`, [s.embedding, width]);
    tensor(`blk.${l}.attn_k.weight`, [s.embedding, width]);
    tensor(`blk.${l}.attn_v.weight`, [s.embedding, width]);
    tensor(`blk.${l}.attn_output.weight`, [width, s.embedding]);
    ones(`blk.${l}.ffn_norm.weight`, s.embedding);
    tensor(`blk.${l}.ffn_gate.weight`, [s.embedding, s.feedForward]);
    tensor(`blk.${l}.ffn_up.weight`, [s.embedding, s.feedForward]);
    tensor(`blk.${l}.ffn_down.weight`, [s.feedForward, s.embedding]);
  }
  ones("output_norm.weight", s.embedding);
  // No output.weight: tied to token_embd (the head is unused for embeddings anyway).
  return w;
}

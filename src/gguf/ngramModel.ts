/**
 * The weights of every scripted n-gram model (the chat scripts of scripted.ts and the tool-calling
 * scripts of toolScripts.ts): a one-layer llama (or qwen2) whose weights are set by hand so that
 * greedy decoding follows a plan from ngram.ts. The scripted token's logit is LOGIT and every other
 * token's is 0, which even strong repeat/frequency penalties keep.
 *
 * How (every quantity below is exact by construction):
 * - Each token of the script gets a binary code of `b` bits, written as ±1 into the residual
 *   (every other token gets the all −1 "other" code). Dimension 0 is a constant 1.
 * - Attention: head h (1…K) looks exactly h tokens back. Its query and key are constants; with
 *   RoPE frequencies θ_p = π/2^p (freq_base 2^16 over 32 rotary dims, linear scaling 1/π) the
 *   score Σ_p A·cos(θ_p(Δ−h)) peaks at distance Δ = h and is ≥ 2A lower at every other distance
 *   below 2^15, so the softmax copies that token's code into subspace h.
 * - FFN: one SwiGLU unit per planned step fires iff the current token and the k previous ones
 *   (the step's context) match; the threshold rides on dimension 0, so RMSNorm scaling cancels.
 *   The unit sets the next token's one-hot dimension (with weight 2^level, see ngram.ts), and the
 *   output head turns that dimension into the token's logit.
 */
import type { NgramPlan } from "./ngram.ts";
import { f32Bytes, GgmlType, GgufWriter } from "./writer.ts";

const HEAD_DIM = 32;
const ROPE_BASE = 2 ** 16;
/** Context length advertised; the look-back heads stay exact up to 2^15 tokens. */
const CONTEXT_LENGTH = 8192;
/** Per-rotary-pair attention score amplitude A (after the 1/√head_dim scale). */
const ATTN_AMPLITUDE = 8;
/** Gate pre-activation of a matching unit; a mismatch gives ≤ −ALPHA. */
const ALPHA = 30;
/** Logit of the scripted next token (all others get 0). */
const LOGIT = 100;

export interface NgramModelMeta {
  /** Writes the tokenizer keys (tokens, merges, specials, chat template, FIM ids). */
  tokenizer(w: GgufWriter): void;
  /**
   * `llama` (default) or `qwen2`: Qwen2's metadata keys, zero q/k/v biases (its attention has
   * them) and NEOX rope, which rotates the pairs (i, i + d/2) instead of (2i, 2i + 1). node-llama-cpp
   * picks its QwenChatWrapper only for a qwen-family architecture.
   */
  architecture?: "llama" | "qwen2";
  /**
   * Runner-ups: wherever the plan's next token is `next` (a token of the plan), `rival` gets the
   * logit LOGIT − `margin` (for a level-0 step) instead of 0, so a penalty or bias on `next`
   * larger than the margin makes `rival` win there (the sampling-parameter demo of scripted.ts).
   */
  rivals?: ReadonlyArray<{ next: number; rival: number; margin: number }>;
}

/** Builds the GGUF of a planned script (llama or qwen2 architecture, F32, one layer); not yet written. */
export function buildNgramModel(name: string, plan: NgramPlan, stamp: string, meta: NgramModelMeta): GgufWriter {
  const arch = meta.architecture ?? "llama";
  const { vocab, steps, lookback: K } = plan;

  // Codes: 1…n for the plan's tokens, 0 ("other") for the rest of the vocabulary.
  const codeOf = new Map(plan.tokens.map((t, i) => [t, i + 1]));
  const bits = Math.ceil(Math.log2(plan.tokens.length + 1));
  const sign = (code: number, bit: number) => ((code >> bit) & 1 ? 1 : -1);

  // Residual layout: [1] constant; subspaces of `bits` dims: 0 = current token, h = look-back h;
  // then one dimension per plan token for the predicted next token.
  const subspace = (s: number, bit: number) => 1 + s * bits + bit;
  const nextDim = (token: number) => 1 + (K + 1) * bits + codeOf.get(token)! - 1;
  const nEmbdUsed = roundUp(1 + (K + 1) * bits + plan.tokens.length, 32);
  // llama.cpp's qwen2 loader wants the attention exactly as wide as the model (heads · head_dim =
  // n_embd): the heads beyond the K look-back ones are all zeros and add nothing.
  const nEmbd = arch === "qwen2" ? Math.max(nEmbdUsed, K * HEAD_DIM) : nEmbdUsed;
  const nHead = arch === "qwen2" ? nEmbd / HEAD_DIM : K;
  const nVocab = vocab.tokens.length;
  const nHeadDims = nHead * HEAD_DIM;
  const nFf = roundUp(steps.length, 32);

  // token_embd [nEmbd, nVocab]
  const embd = new Float32Array(nEmbd * nVocab);
  for (let t = 0; t < nVocab; t++) {
    const code = codeOf.get(t) ?? 0;
    embd[t * nEmbd] = 1;
    for (let bit = 0; bit < bits; bit++) embd[t * nEmbd + subspace(0, bit)] = sign(code, bit);
  }

  // RMSNorm weights chosen so the normalized vector equals the nominal residual (±1 entries).
  const rms = (filled: number) => Math.sqrt(filled / nEmbd);
  const attnNorm = new Float32Array(nEmbd).fill(rms(1 + bits));
  const ffnNorm = new Float32Array(nEmbd).fill(rms(1 + (K + 1) * bits));
  const outNorm = new Float32Array(nEmbd).fill(rms(2 + (K + 1) * bits));

  // Attention: matrices [in, out] stored as out rows of `in` values.
  const wq = new Float32Array(nEmbd * nHeadDims);
  const wk = new Float32Array(nEmbd * nHeadDims);
  const wv = new Float32Array(nEmbd * nHeadDims);
  const wo = new Float32Array(nHeadDims * nEmbd);
  const qAmplitude = ATTN_AMPLITUDE * Math.sqrt(HEAD_DIM);
  // The dimensions RoPE rotates together at frequency p (the same frequencies in both modes).
  const pair = arch === "qwen2" ? (p: number) => [p, p + HEAD_DIM / 2] as const : (p: number) => [2 * p, 2 * p + 1] as const;
  for (let h = 1; h <= K; h++) {
    const head = (h - 1) * HEAD_DIM;
    for (let p = 0; p < HEAD_DIM / 2; p++) {
      const theta = Math.PI / 2 ** p;
      const [first, second] = pair(p);
      // RoPE rotates q by iθ and k by jθ: q·k = A·cos((i−j−h)θ) for q = A(cos hθ, −sin hθ), k = (1, 0).
      wq[(head + first) * nEmbd] = qAmplitude * Math.cos(h * theta);
      wq[(head + second) * nEmbd] = -qAmplitude * Math.sin(h * theta);
      wk[(head + first) * nEmbd] = 1;
    }
    for (let bit = 0; bit < bits; bit++) {
      wv[(head + bit) * nEmbd + subspace(0, bit)] = 1;
      wo[subspace(h, bit) * nHeadDims + head + bit] = 1;
    }
  }

  // FFN: unit u fires iff its context matches; it then writes the next token's code.
  const gate = new Float32Array(nEmbd * nFf);
  const up = new Float32Array(nEmbd * nFf);
  const down = new Float32Array(nFf * nEmbd);
  steps.forEach(({ context, next, level }, u) => {
    const row = u * nEmbd;
    context.forEach((token, h) => {
      const code = codeOf.get(token)!;
      for (let bit = 0; bit < bits; bit++) gate[row + subspace(h, bit)] = ALPHA * sign(code, bit);
    });
    gate[row] = -ALPHA * (context.length * bits - 1);
    up[row] = 1;
    down[nextDim(next) * nFf + u] = 2 ** level / ALPHA;
  });

  // Output head [nEmbd, nVocab]: a plan token's logit is LOGIT × its next-token dimension.
  const output = new Float32Array(nEmbd * nVocab);
  for (const token of plan.tokens) output[token * nEmbd + nextDim(token)] = LOGIT;
  for (const { next, rival, margin } of meta.rivals ?? []) {
    if (!codeOf.has(next)) throw new RangeError(`rival's token ${next} is not in the plan`);
    output[rival * nEmbd + nextDim(next)] = LOGIT - margin;
  }

  const w = new GgufWriter();
  w.set("general.architecture", "string", arch)
    .set("general.name", "string", `sputnik-${name}`)
    .set("general.file_type", "u32", 0)
    .set("sputnik.generator", "string", stamp)
    .set(`${arch}.context_length`, "u32", CONTEXT_LENGTH)
    .set(`${arch}.embedding_length`, "u32", nEmbd)
    .set(`${arch}.block_count`, "u32", 1)
    .set(`${arch}.feed_forward_length`, "u32", nFf)
    .set(`${arch}.attention.head_count`, "u32", nHead)
    .set(`${arch}.attention.head_count_kv`, "u32", nHead)
    .set(`${arch}.attention.key_length`, "u32", HEAD_DIM)
    .set(`${arch}.attention.value_length`, "u32", HEAD_DIM)
    .set(`${arch}.attention.layer_norm_rms_epsilon`, "f32", 1e-6)
    .set(`${arch}.rope.dimension_count`, "u32", HEAD_DIM)
    .set(`${arch}.rope.freq_base`, "f32", ROPE_BASE)
    .set(`${arch}.rope.scaling.type`, "string", "linear")
    .set(`${arch}.rope.scaling.factor`, "f32", 1 / Math.PI)
    .set(`${arch}.vocab_size`, "u32", nVocab);
  meta.tokenizer(w);

  const tensor = (tensorName: string, dims: number[], values: Float32Array) =>
    w.addTensor({ name: tensorName, dims, type: GgmlType.F32, data: () => [f32Bytes(values)] });
  tensor("token_embd.weight", [nEmbd, nVocab], embd);
  tensor("blk.0.attn_norm.weight", [nEmbd], attnNorm);
  tensor("blk.0.attn_q.weight", [nEmbd, nHeadDims], wq);
  tensor("blk.0.attn_k.weight", [nEmbd, nHeadDims], wk);
  tensor("blk.0.attn_v.weight", [nEmbd, nHeadDims], wv);
  if (arch === "qwen2") {
    for (const proj of ["q", "k", "v"]) tensor(`blk.0.attn_${proj}.bias`, [nHeadDims], new Float32Array(nHeadDims));
  }
  tensor("blk.0.attn_output.weight", [nHeadDims, nEmbd], wo);
  tensor("blk.0.ffn_norm.weight", [nEmbd], ffnNorm);
  tensor("blk.0.ffn_gate.weight", [nEmbd, nFf], gate);
  tensor("blk.0.ffn_up.weight", [nEmbd, nFf], up);
  tensor("blk.0.ffn_down.weight", [nFf, nEmbd], down);
  tensor("output_norm.weight", [nEmbd], outNorm);
  tensor("output.weight", [nEmbd, nVocab], output);
  return w;
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

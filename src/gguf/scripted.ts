/**
 * The "scripted" test model: a one-layer llama whose weights are set by hand so that, after the
 * chat template's `<｜Assistant｜>`, greedy decoding emits
 *
 *     <think> "\n" reasoning "\n" </think> "\n\n" answer <｜end▁of▁sentence｜>
 *
 * for any user message, on any turn, and under any ordinary sampling settings: the scripted token's
 * logit is 100 and every other token's is 0, which even strong repeat/frequency penalties keep.
 *
 * How (an n-gram machine; every quantity below is exact by construction):
 * - Each token of the script gets a binary code of `b` bits, written as ±1 into the residual
 *   (every other token gets the all −1 "other" code). Dimension 0 is a constant 1.
 * - Attention: head h (1…K) looks exactly h tokens back. Its query and key are constants; with
 *   RoPE frequencies θ_p = π/2^p (freq_base 2^16 over 32 rotary dims, linear scaling 1/π) the
 *   score Σ_p A·cos(θ_p(Δ−h)) peaks at distance Δ = h and is ≥ 2A lower at every other distance
 *   below 2^15, so the softmax copies that token's code into subspace h.
 * - FFN: one SwiGLU unit per script step fires iff the current token and the k previous ones
 *   (k per step, the smallest that makes the step unambiguous) match the script; the threshold
 *   rides on dimension 0, so RMSNorm scaling cancels. The unit sets the next token's one-hot
 *   dimension, and the output head turns that dimension into the token's logit.
 * The look-back never reaches before `<｜Assistant｜>` nor, in the answer, before `</think>`
 * (both occur once in the script), so user text of any kind cannot disturb the script, and the
 * answer still follows when `</think>` is forced early (node-llama-cpp's thought budget).
 */
import { addTokenizer, buildVocabulary, encode, wordPieces, type Vocabulary } from "./tokenizer.ts";
import { f32Bytes, GgmlType, GgufWriter } from "./writer.ts";

export interface Script {
  /** Text of the thought, between `<think>\n` and `\n</think>`. */
  reasoning: string;
  /** Text of the reply after `</think>\n\n`. */
  answer: string;
  /**
   * Sampling-parameter demo: wherever the script's next token is `word` (one token), EOS is the
   * runner-up, `margin` logits behind. Greedy decoding follows the script; a frequency/presence
   * penalty or a logit bias on `word` larger than the margin ends the answer there instead.
   */
  rival?: { word: string; margin: number };
  /**
   * Fill-in-the-middle: the vocabulary gets Qwen2.5-Coder's `<|fim_prefix|>`, `<|fim_suffix|>`,
   * `<|fim_middle|>` (and the GGUF keys naming them), and after `<|fim_middle|>` the model emits
   * this text, then EOS, whatever prefix and suffix came before.
   */
  fimMiddle?: string;
  /**
   * Plain text completion: after BOS the model emits this text, then EOS; so a prompt that is a
   * (token-aligned) beginning of it is continued with the rest.
   */
  completion?: string;
}

/** Qwen2.5-Coder's FIM tokens (CONTROL), in this order after the DeepSeek special tokens. */
export const FIM_TOKENS = { prefix: "<|fim_prefix|>", suffix: "<|fim_suffix|>", middle: "<|fim_middle|>" } as const;

const TEXT_FIELDS = ["reasoning", "answer", "fimMiddle", "completion"] as const;

export class ScriptError extends Error {}

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
/** Refuse scripts that need more look-back heads than this (they would bloat the model). */
const MAX_LOOKBACK = 48;

export interface ScriptPlan {
  vocab: Vocabulary;
  /**
   * The full token sequence: the chat run from `<｜Assistant｜>` to EOS, then the runs of
   * `completion` (from BOS) and `fimMiddle` (from `<|fim_middle|>`) when the script has them.
   */
  sequence: number[];
  /** One entry per distinct step: the context (current token first, then older ones) and the next token. */
  steps: { context: number[]; next: number }[];
  /** Number of look-back heads. */
  lookback: number;
}

/** Tokenizes the script and derives its n-gram steps. */
export function planScript(script: Script): ScriptPlan {
  for (const field of TEXT_FIELDS) {
    const text = script[field];
    if (text === undefined) continue;
    if (text.length === 0) throw new ScriptError(`script ${field} is empty`);
    if (text !== text.trim()) throw new ScriptError(`script ${field} must not start or end with whitespace`);
    if (/<｜|<\/?think>|<\|fim_/.test(text)) throw new ScriptError(`script ${field} must not contain special-token text`);
  }
  const words = [...wordPieces(script.reasoning), ...wordPieces(script.answer)];
  for (const extra of [script.completion, script.fimMiddle]) if (extra !== undefined) words.push(...wordPieces(extra));
  const vocab = buildVocabulary({
    words,
    ...(script.fimMiddle !== undefined ? { extraSpecial: [FIM_TOKENS.prefix, FIM_TOKENS.suffix, FIM_TOKENS.middle] } : {}),
  });
  const { special } = vocab;
  const chatRun = [
    special.assistant,
    special.think,
    ...encode(vocab, `\n${script.reasoning}\n`),
    special.endThink,
    ...encode(vocab, `\n\n${script.answer}`),
    special.eos,
  ];
  const runs = [chatRun];
  if (script.completion !== undefined) runs.push([special.bos, ...encode(vocab, script.completion), special.eos]);
  if (script.fimMiddle !== undefined) runs.push([vocab.ids.get(FIM_TOKENS.middle)!, ...encode(vocab, script.fimMiddle), special.eos]);
  const sequence = runs.flat();
  const runStarts: number[] = [];
  for (let at = 0, r = 0; r < runs.length; at += runs[r].length, r++) runStarts.push(at);
  const endThinkAt = sequence.indexOf(special.endThink);
  const anchors = [...runStarts, endThinkAt].sort((a, b) => a - b);
  const lastAtOrBefore = (points: number[], i: number) => points.filter((p) => p <= i).at(-1)!;

  // Positions i predict sequence[i + 1] from sequence[i - k … i]; windows never reach before
  // the last anchor (a run's first token, or `</think>` for the answer), which makes the longest one unique.
  const window = (i: number, k: number) => sequence.slice(i - k, i + 1);
  const sameWindow = (i: number, j: number, k: number): boolean => {
    // Tokens before a run's start are unknown (user text): treat them as matching anything.
    for (let d = 0; d <= Math.min(k, j - lastAtOrBefore(runStarts, j)); d++) if (sequence[i - d] !== sequence[j - d]) return false;
    return true;
  };
  const steps = new Map<string, { context: number[]; next: number }>();
  let lookback = 1;
  for (let i = 0; i + 1 < sequence.length; i++) {
    if (sequence[i] === special.eos) continue; // a run's end: nothing follows it
    const anchor = lastAtOrBefore(anchors, i);
    let k = 0;
    for (; k < i - anchor; k++) {
      let ambiguous = false;
      for (let j = 0; j + 1 < sequence.length && !ambiguous; j++)
        ambiguous = j !== i && sequence[j] !== special.eos && sequence[j + 1] !== sequence[i + 1] && sameWindow(i, j, k);
      if (!ambiguous) break;
    }
    const context = window(i, k).reverse();
    steps.set(context.join(","), { context, next: sequence[i + 1] });
    lookback = Math.max(lookback, k);
  }
  if (lookback > MAX_LOOKBACK)
    throw new ScriptError(`script needs ${lookback} tokens of look-back (max ${MAX_LOOKBACK}): repeat fewer long phrases`);
  return { vocab, sequence, steps: [...steps.values()], lookback };
}

/** Builds the scripted model's GGUF (not yet written). `stamp` goes into `sputnik.generator`. */
export function buildScriptedModel(name: string, script: Script, stamp: string): GgufWriter {
  const plan = planScript(script);
  const { vocab, steps, lookback: K } = plan;

  // Codes: 1…n for the script's tokens, 0 ("other") for the rest of the vocabulary.
  const scriptTokens = [...new Set(plan.sequence)];
  const codeOf = new Map(scriptTokens.map((t, i) => [t, i + 1]));
  const bits = Math.ceil(Math.log2(scriptTokens.length + 1));
  const sign = (code: number, bit: number) => ((code >> bit) & 1 ? 1 : -1);

  // Residual layout: [1] constant; subspaces of `bits` dims: 0 = current token, h = look-back h;
  // then one dimension per script token for the predicted next token.
  const subspace = (s: number, bit: number) => 1 + s * bits + bit;
  const nextDim = (token: number) => 1 + (K + 1) * bits + codeOf.get(token)! - 1;
  const nEmbd = roundUp(1 + (K + 1) * bits + scriptTokens.length, 32);
  const nVocab = vocab.tokens.length;
  const nHeadDims = K * HEAD_DIM;
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
  for (let h = 1; h <= K; h++) {
    const head = (h - 1) * HEAD_DIM;
    for (let p = 0; p < HEAD_DIM / 2; p++) {
      const theta = Math.PI / 2 ** p;
      // RoPE rotates q by iθ and k by jθ: q·k = A·cos((i−j−h)θ) for q = A(cos hθ, −sin hθ), k = (1, 0).
      wq[(head + 2 * p) * nEmbd] = qAmplitude * Math.cos(h * theta);
      wq[(head + 2 * p + 1) * nEmbd] = -qAmplitude * Math.sin(h * theta);
      wk[(head + 2 * p) * nEmbd] = 1;
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
  steps.forEach(({ context, next }, u) => {
    const row = u * nEmbd;
    context.forEach((token, h) => {
      const code = codeOf.get(token)!;
      for (let bit = 0; bit < bits; bit++) gate[row + subspace(h, bit)] = ALPHA * sign(code, bit);
    });
    gate[row] = -ALPHA * (context.length * bits - 1);
    up[row] = 1;
    down[nextDim(next) * nFf + u] = 1 / ALPHA;
  });

  // Output head [nEmbd, nVocab]: a script token's logit is LOGIT × its next-token dimension.
  const output = new Float32Array(nEmbd * nVocab);
  for (const token of scriptTokens) output[token * nEmbd + nextDim(token)] = LOGIT;
  if (script.rival) {
    const word = encode(vocab, script.rival.word);
    if (word.length !== 1 || !codeOf.has(word[0]!)) throw new ScriptError(`rival word ${JSON.stringify(script.rival.word)} must be one token of the script`);
    output[vocab.special.eos * nEmbd + nextDim(word[0]!)] = LOGIT - script.rival.margin;
  }

  const w = new GgufWriter();
  w.set("general.architecture", "string", "llama")
    .set("general.name", "string", `sputnik-${name}`)
    .set("general.file_type", "u32", 0)
    .set("sputnik.generator", "string", stamp)
    .set("llama.context_length", "u32", CONTEXT_LENGTH)
    .set("llama.embedding_length", "u32", nEmbd)
    .set("llama.block_count", "u32", 1)
    .set("llama.feed_forward_length", "u32", nFf)
    .set("llama.attention.head_count", "u32", K)
    .set("llama.attention.head_count_kv", "u32", K)
    .set("llama.attention.key_length", "u32", HEAD_DIM)
    .set("llama.attention.value_length", "u32", HEAD_DIM)
    .set("llama.attention.layer_norm_rms_epsilon", "f32", 1e-6)
    .set("llama.rope.dimension_count", "u32", HEAD_DIM)
    .set("llama.rope.freq_base", "f32", ROPE_BASE)
    .set("llama.rope.scaling.type", "string", "linear")
    .set("llama.rope.scaling.factor", "f32", 1 / Math.PI)
    .set("llama.vocab_size", "u32", nVocab);
  addTokenizer(w, vocab);
  if (script.fimMiddle !== undefined) {
    // llama.cpp reads these keys (it would also find the tokens by their text).
    w.set("tokenizer.ggml.fim_pre_token_id", "u32", vocab.ids.get(FIM_TOKENS.prefix)!)
      .set("tokenizer.ggml.fim_suf_token_id", "u32", vocab.ids.get(FIM_TOKENS.suffix)!)
      .set("tokenizer.ggml.fim_mid_token_id", "u32", vocab.ids.get(FIM_TOKENS.middle)!);
  }

  const tensor = (name: string, dims: number[], values: Float32Array) =>
    w.addTensor({ name, dims, type: GgmlType.F32, data: () => [f32Bytes(values)] });
  tensor("token_embd.weight", [nEmbd, nVocab], embd);
  tensor("blk.0.attn_norm.weight", [nEmbd], attnNorm);
  tensor("blk.0.attn_q.weight", [nEmbd, nHeadDims], wq);
  tensor("blk.0.attn_k.weight", [nEmbd, nHeadDims], wk);
  tensor("blk.0.attn_v.weight", [nEmbd, nHeadDims], wv);
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

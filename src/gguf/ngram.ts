/**
 * Scripted n-gram models over *paths*: the general form of the construction in scripted.ts, for
 * scripts that are not one run of text, such as a tool-calling model driven by node-llama-cpp's
 * function-calling loop (src/gguf/toolScripts.ts), where the engine injects text between what the
 * model generates and rewrites what it generated before asking for the next token.
 *
 * A script is a list of runs; a run is a list of segments, each tagged with who writes it:
 * - `prompt`: text before the model's turn that selects the run (e.g. `<｜Assistant｜>`, or
 *   `<｜tool▁outputs▁end｜><｜Assistant｜>` for the answer after a tool result);
 * - `model`: tokens the model must predict, each from the tokens before it;
 * - `injected`: text the engine writes into the context itself (never predicted);
 * - `detour: true` on a model segment: tokens the model predicts that are then taken out of the
 *   context again (node-llama-cpp's grammar terminators), so the run continues without them.
 *
 * Weights are those of scripted.ts (look-back heads copying a binary code of the token h back,
 * one SwiGLU unit per distinct step that fires iff its context matches, output head mapping the
 * unit to its next token). What differs is ambiguity. Tokens before a run's start are unknown, so
 * two runs can share a step's whole known context (every run starts at `<｜Assistant｜>`) and
 * differ only before it. Such a step is planned with the longest context it has, and the run whose
 * prompt is more specific wins by weight: a unit's output is LOGIT·2^level, level = its context
 * length. At most one unit per context length fires at a position (two contexts of the same length
 * cannot both equal the last tokens), so the longest match outweighs all shorter ones together
 * (2^L > 2^0 + … + 2^(L−1)); the planner checks that every such conflict is won by the right side.
 * Scripts without such conflicts use level 0 throughout, like scripted.ts.
 */
import { buildVocabulary, encode, mergeRanks, wordPieces, type Vocabulary, type VocabularyOptions } from "./tokenizer.ts";
import { f32Bytes, GgmlType, GgufWriter } from "./writer.ts";
import { ScriptError } from "./scripted.ts";

export interface Segment {
  text: string;
  by: "prompt" | "model" | "injected";
  /** Predicted by the model, then removed from the context by the engine (model segments only). */
  detour?: boolean;
}

export type Run = readonly Segment[];

export interface NgramStep {
  /** Current token first, then older ones. */
  context: number[];
  next: number;
  /** Output weight exponent (see the file comment). */
  level: number;
}

export interface NgramPlan {
  vocab: Vocabulary;
  /** Every token the script uses (each gets a code; all others share the "other" code). */
  tokens: number[];
  steps: NgramStep[];
  /** Look-back heads needed. */
  lookback: number;
  /** The token paths planned (one per run, plus one per detour), for tests. */
  paths: Array<{ tokens: number[]; predicted: boolean[] }>;
}

const HEAD_DIM = 32;
const ROPE_BASE = 2 ** 16;
const CONTEXT_LENGTH = 8192;
const ATTN_AMPLITUDE = 8;
const ALPHA = 30;
const LOGIT = 100;
const MAX_LOOKBACK = 48;
/** Levels above this would make logits too large for float32 to keep a margin of LOGIT. */
const MAX_LEVEL = 12;

/** Tokenizes text that may contain the vocabulary's special-token texts (as llama.cpp does with specials on). */
export function encodeWithSpecials(vocab: Vocabulary, text: string, ranks = mergeRanks(vocab)): number[] {
  const specials = vocab.tokens.slice(vocab.normalCount).filter((t) => !t.startsWith("[PAD"));
  specials.sort((a, b) => b.length - a.length);
  const out: number[] = [];
  let plain = "";
  for (let at = 0; at < text.length; ) {
    const special = specials.find((s) => text.startsWith(s, at));
    if (special) {
      if (plain) out.push(...encode(vocab, plain, ranks));
      plain = "";
      out.push(vocab.ids.get(special)!);
      at += special.length;
    } else {
      plain += text[at];
      at++;
    }
  }
  if (plain) out.push(...encode(vocab, plain, ranks));
  return out;
}

/** The vocabulary for runs: DeepSeek specials (or `specials.specialTokens`, + `extraSpecial`) and the runs' words. */
export function vocabularyForRuns(
  runs: readonly Run[],
  extraSpecial: readonly string[] = [],
  specials: Pick<VocabularyOptions, "specialTokens"> = {},
): Vocabulary {
  const words = runs.flatMap((run) => run.flatMap((segment) => wordPieces(segment.text)));
  return buildVocabulary({ words, ...(extraSpecial.length > 0 ? { extraSpecial } : {}), ...specials });
}

/** Derives the n-gram steps of `runs` (see the file comment); throws ScriptError for a script no weights can follow. */
export function planRuns(vocab: Vocabulary, runs: readonly Run[]): NgramPlan {
  const ranks = mergeRanks(vocab);
  const paths: Array<{ tokens: number[]; predicted: boolean[] }> = [];
  for (const run of runs) {
    const tokens: number[] = [];
    const predicted: boolean[] = [];
    for (const segment of run) {
      const ids = encodeWithSpecials(vocab, segment.text, ranks);
      if (segment.detour) {
        if (segment.by !== "model") throw new ScriptError("only model segments can be detours");
        paths.push({ tokens: [...tokens, ...ids], predicted: [...predicted.map(() => false), ...ids.map(() => true)] });
        continue;
      }
      tokens.push(...ids);
      for (const _ of ids) predicted.push(segment.by === "model");
    }
    if (predicted[0]) throw new ScriptError("a run must start with prompt or injected text");
    paths.push({ tokens, predicted });
  }

  // Predictions: (path, position i) → tokens[i + 1].
  const predictions: Array<{ p: number; i: number; next: number }> = [];
  paths.forEach((path, p) => {
    for (let i = 0; i + 1 < path.tokens.length; i++) if (path.predicted[i + 1]) predictions.push({ p, i, next: path.tokens[i + 1] });
  });
  /** Could the k-window ending at (p, i) be the last tokens at (q, j)? Tokens before q's path start are unknown. */
  const possiblyMatches = (a: { p: number; i: number }, b: { p: number; i: number }, k: number): boolean => {
    const ta = paths[a.p].tokens;
    const tb = paths[b.p].tokens;
    for (let d = 0; d <= k && b.i - d >= 0; d++) if (ta[a.i - d] !== tb[b.i - d]) return false;
    return true;
  };
  const ks = predictions.map((a) => {
    for (let k = 0; k < a.i; k++) {
      if (!predictions.some((b) => b.next !== a.next && possiblyMatches(a, b, k))) return { k, resolved: true };
    }
    const k = a.i;
    const resolved = !predictions.some((b) => b.next !== a.next && possiblyMatches(a, b, k));
    return { k, resolved };
  });
  const prioritized = ks.some((entry) => !entry.resolved);
  if (prioritized) {
    predictions.forEach((a, x) => {
      if (ks[x].resolved) return;
      predictions.forEach((b, y) => {
        // Where a's unit may fire at b's position, the longer context wins: b's own when it is
        // longer, a's when a's is (then the tokens before b's run really are a's situation).
        if (b.next !== a.next && possiblyMatches(a, b, ks[x].k) && ks[y].k === ks[x].k) {
          throw new ScriptError(`two runs continue the same context differently (tokens ${paths[a.p].tokens.slice(0, a.i + 1).join(",")}); make one run's prompt more specific`);
        }
      });
      if (ks[x].k >= MAX_LEVEL) throw new ScriptError(`a shared context of ${ks[x].k + 1} tokens is too long; let runs diverge sooner`);
    });
  }
  const steps = new Map<string, NgramStep>();
  let lookback = 1;
  predictions.forEach((a, x) => {
    const k = ks[x].k;
    const context = paths[a.p].tokens.slice(a.i - k, a.i + 1).reverse();
    const key = context.join(",");
    const existing = steps.get(key);
    if (existing && existing.next !== a.next) throw new ScriptError(`context ${key} continues two ways`);
    steps.set(key, { context, next: a.next, level: prioritized ? Math.min(k, MAX_LEVEL) : 0 });
    lookback = Math.max(lookback, k);
  });
  if (lookback > MAX_LOOKBACK) throw new ScriptError(`script needs ${lookback} tokens of look-back (max ${MAX_LOOKBACK})`);
  const tokens = [...new Set(paths.flatMap((path) => path.tokens))];
  return { vocab, tokens, steps: [...steps.values()], lookback, paths };
}

export interface NgramModelMeta {
  /** Writes the tokenizer keys (tokens, merges, specials, chat template). */
  tokenizer(w: GgufWriter): void;
  /**
   * `llama` (default) or `qwen2`: Qwen2's metadata keys, zero q/k/v biases (its attention has
   * them) and NEOX rope, which rotates the pairs (i, i + d/2) instead of (2i, 2i + 1). node-llama-cpp
   * picks its QwenChatWrapper only for a qwen-family architecture.
   */
  architecture?: "llama" | "qwen2";
}

/** Builds the GGUF of a planned script (llama or qwen2 architecture, F32, one layer). */
export function buildNgramModel(name: string, plan: NgramPlan, stamp: string, meta: NgramModelMeta): GgufWriter {
  const arch = meta.architecture ?? "llama";
  const { vocab, steps, lookback: K } = plan;
  const codeOf = new Map(plan.tokens.map((t, i) => [t, i + 1]));
  const bits = Math.ceil(Math.log2(plan.tokens.length + 1));
  const sign = (code: number, bit: number) => ((code >> bit) & 1 ? 1 : -1);
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

  const embd = new Float32Array(nEmbd * nVocab);
  for (let t = 0; t < nVocab; t++) {
    const code = codeOf.get(t) ?? 0;
    embd[t * nEmbd] = 1;
    for (let bit = 0; bit < bits; bit++) embd[t * nEmbd + subspace(0, bit)] = sign(code, bit);
  }
  const rms = (filled: number) => Math.sqrt(filled / nEmbd);
  const attnNorm = new Float32Array(nEmbd).fill(rms(1 + bits));
  const ffnNorm = new Float32Array(nEmbd).fill(rms(1 + (K + 1) * bits));
  const outNorm = new Float32Array(nEmbd).fill(rms(2 + (K + 1) * bits));

  const wq = new Float32Array(nEmbd * nHeadDims);
  const wk = new Float32Array(nEmbd * nHeadDims);
  const wv = new Float32Array(nEmbd * nHeadDims);
  const wo = new Float32Array(nHeadDims * nEmbd);
  const qAmplitude = ATTN_AMPLITUDE * Math.sqrt(HEAD_DIM);
  // The dimensions RoPE rotates together at frequency p (the same frequencies in both modes).
  const pair = arch === "qwen2" ? (p: number) => [p, p + HEAD_DIM / 2] : (p: number) => [2 * p, 2 * p + 1];
  for (let h = 1; h <= K; h++) {
    const head = (h - 1) * HEAD_DIM;
    for (let p = 0; p < HEAD_DIM / 2; p++) {
      const theta = Math.PI / 2 ** p;
      const [first, second] = pair(p);
      wq[(head + first!) * nEmbd] = qAmplitude * Math.cos(h * theta);
      wq[(head + second!) * nEmbd] = -qAmplitude * Math.sin(h * theta);
      wk[(head + first!) * nEmbd] = 1;
    }
    for (let bit = 0; bit < bits; bit++) {
      wv[(head + bit) * nEmbd + subspace(0, bit)] = 1;
      wo[subspace(h, bit) * nHeadDims + head + bit] = 1;
    }
  }

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
  const output = new Float32Array(nEmbd * nVocab);
  for (const token of plan.tokens) output[token * nEmbd + nextDim(token)] = LOGIT;

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

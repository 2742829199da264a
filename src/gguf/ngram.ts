/**
 * The planner of the scripted n-gram models: from a script's *paths* of tokens it derives the
 * steps (context → next token) that the weights of ngramModel.ts follow. The chat scripts of
 * scripted.ts are its simplest case (one run of text per situation); the tool-calling scripts of
 * toolScripts.ts are the general one: node-llama-cpp's function-calling loop injects text between
 * what the model generates and rewrites what it generated before asking for the next token.
 *
 * A script is a list of runs; a run is a list of segments, each tagged with who writes it:
 * - `prompt`: text before the model's turn that selects the run (e.g. `<｜Assistant｜>`, or
 *   `<｜tool▁outputs▁end｜><｜Assistant｜>` for the answer after a tool result);
 * - `model`: tokens the model must predict, each from the tokens before it;
 * - `injected`: text the engine writes into the context itself (never predicted);
 * - `detour: true` on a model segment: tokens the model predicts that are then taken out of the
 *   context again (node-llama-cpp's grammar terminators), so the run continues without them.
 *
 * Each predicted token gets the shortest context (current token and k older ones) that no other
 * prediction with another next token could also see; a context that reaches a token occurring
 * once in the script (in a chat script: a run's first token, `</think>`) is always unambiguous,
 * so the look-back never reaches before it. Tokens before a run's start are unknown, so two runs
 * can share a step's whole known context (tool-script runs all end at the assistant marker) and
 * differ only before it. Such a step is planned with the longest context it has, and the run
 * whose prompt is more specific wins by weight: a unit's output is LOGIT·2^level, level = its
 * context length. At most one unit per context length fires at a position (two contexts of the
 * same length cannot both equal the last tokens), so the longest match outweighs all shorter ones
 * together (2^L > 2^0 + … + 2^(L−1)); the planner checks that every such conflict is won by the
 * right side. Scripts without such conflicts (every chat script) use level 0 throughout.
 */
import { buildVocabulary, encode, mergeRanks, wordPieces, type Vocabulary, type VocabularyOptions } from "./tokenizer.ts";

/** A script no weights can follow (or one that breaks a script format's rules). */
export class ScriptError extends Error {}

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

/** Refuse scripts that need more look-back heads than this (they would bloat the model). */
const MAX_LOOKBACK = 48;
/** Levels above this would make logits too large for float32 to keep the scripted logit's margin (ngramModel.ts). */
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
  if (lookback > MAX_LOOKBACK) throw new ScriptError(`script needs ${lookback} tokens of look-back (max ${MAX_LOOKBACK}): repeat fewer long phrases`);
  const tokens = [...new Set(paths.flatMap((path) => path.tokens))];
  return { vocab, tokens, steps: [...steps.values()], lookback, paths };
}

/**
 * A gpt2-style byte-level BPE vocabulary, laid out like the DeepSeek-R1 distills' GGUFs: the 256
 * byte tokens, merged word tokens, then the special tokens (`<｜User｜>` etc., with the full-width
 * `｜` U+FF5C and `▁` U+2581 that DeepSeek uses).
 *
 * llama.cpp aborts the whole process on two tokens with the same text, so the builder refuses
 * duplicates. Merges only ever join ASCII letters (optionally after a leading space), and `\n\n`:
 * punctuation stays one character per token so grammar-constrained output (JSON) lines up, and
 * non-ASCII text (CJK, emoji) stays split into byte tokens, as real models often split it.
 */
import { R1_DISTILL_CHAT_TEMPLATE } from "./chatTemplate.ts";
import type { GgufWriter } from "./writer.ts";

export enum TokenType {
  NORMAL = 1,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
}

export const SPECIAL = {
  bos: "<｜begin▁of▁sentence｜>",
  eos: "<｜end▁of▁sentence｜>",
  pad: "<｜▁pad▁｜>",
  user: "<｜User｜>",
  assistant: "<｜Assistant｜>",
  think: "<think>",
  endThink: "</think>",
} as const;

/** Special tokens in id order, with their types, as in the R1-Distill GGUFs. */
const SPECIAL_TOKENS: ReadonlyArray<readonly [string, TokenType]> = [
  [SPECIAL.eos, TokenType.CONTROL],
  [SPECIAL.user, TokenType.USER_DEFINED],
  [SPECIAL.assistant, TokenType.USER_DEFINED],
  [SPECIAL.bos, TokenType.CONTROL],
  [SPECIAL.think, TokenType.USER_DEFINED],
  [SPECIAL.endThink, TokenType.USER_DEFINED],
  [SPECIAL.pad, TokenType.CONTROL],
  ["<｜tool▁calls▁begin｜>", TokenType.USER_DEFINED],
  ["<｜tool▁calls▁end｜>", TokenType.USER_DEFINED],
  ["<｜tool▁call▁begin｜>", TokenType.USER_DEFINED],
  ["<｜tool▁call▁end｜>", TokenType.USER_DEFINED],
  ["<｜tool▁outputs▁begin｜>", TokenType.USER_DEFINED],
  ["<｜tool▁outputs▁end｜>", TokenType.USER_DEFINED],
  ["<｜tool▁output▁begin｜>", TokenType.USER_DEFINED],
  ["<｜tool▁output▁end｜>", TokenType.USER_DEFINED],
  ["<｜tool▁sep｜>", TokenType.USER_DEFINED],
];

/** Value of `tokenizer.ggml.pre`: llama.cpp maps it to the Qwen2 pre-tokenizer regex below. */
export const PRE_TOKENIZER = "deepseek-r1-qwen";

/** llama.cpp's Qwen2 pre-tokenizer regex (the `(?i:…)` group spelled out, which JS lacks). */
const PRE_TOKENIZE = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte → printable-character map used by byte-level BPE token texts. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array(256);
  for (const b of printable) map[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCodePoint(256 + next++);
  return map;
})();

/** Byte values in the order GPT-2/Qwen give the byte tokens ids (printable ones first). */
const BYTE_ORDER: readonly number[] = [...Array(256).keys()].sort(
  (a, b) => BYTE_TO_CHAR[a].codePointAt(0)! - BYTE_TO_CHAR[b].codePointAt(0)!,
);

export class VocabularyError extends Error {}

export interface Vocabulary {
  tokens: string[];
  types: TokenType[];
  /** `"left right"` pairs in rank order. */
  merges: string[];
  /** Ids of the special tokens by role. */
  special: Record<keyof typeof SPECIAL, number>;
  /** Token text → id. */
  ids: Map<string, number>;
  /** Number of ordinary (byte + merged) tokens; specials follow. */
  normalCount: number;
}

export interface VocabularyOptions {
  /** Byte-level token texts (as produced by `wordPieces`) to add as merged tokens, in order. */
  words?: Iterable<string>;
  /**
   * Pad the ordinary vocabulary with synthetic letter words until it holds this many tokens
   * (the benchmark model's realistic 151,643 ordinary tokens).
   */
  normalSize?: number;
  /** Pad the whole vocabulary with `[PADn]` UNUSED tokens (as Qwen GGUFs do) to this size. */
  totalSize?: number;
  /** More CONTROL tokens after the DeepSeek specials (e.g. Qwen2.5-Coder's FIM tokens). */
  extraSpecial?: readonly string[];
  /**
   * The special tokens in id order, instead of DeepSeek's (e.g. Qwen's, src/gguf/qwenTokenizer.ts).
   * Roles of `SPECIAL` the set lacks get id -1 in `special`.
   */
  specialTokens?: ReadonlyArray<readonly [string, TokenType]>;
}

/** Builds a vocabulary: bytes, `\n\n`, merged words, optional synthetic words, specials, optional padding. */
export function buildVocabulary(options: VocabularyOptions = {}): Vocabulary {
  const tokens: string[] = [];
  const types: TokenType[] = [];
  const merges: string[] = [];
  const ids = new Map<string, number>();
  const add = (text: string, type: TokenType): void => {
    if (ids.has(text)) throw new VocabularyError(`duplicate token text ${JSON.stringify(text)}`);
    ids.set(text, tokens.length);
    tokens.push(text);
    types.push(type);
  };
  for (const b of BYTE_ORDER) add(BYTE_TO_CHAR[b], TokenType.NORMAL);

  // Words are added by tokenizing them with the merges so far and then merging the pieces left
  // to right with new, lowest-priority merges: every word becomes one token and no earlier word's
  // tokenization changes. Bare words go first so " word" becomes " " + "word" (one merge).
  const mergeSet = new Set<string>();
  const ranks = new Map<string, number>();
  const merge = (left: string, right: string): string => {
    const pair = `${left} ${right}`;
    const merged = left + right;
    if (!ids.has(merged)) add(merged, TokenType.NORMAL);
    if (!mergeSet.has(pair)) {
      mergeSet.add(pair);
      ranks.set(pair, merges.length);
      merges.push(pair);
    }
    return merged;
  };
  const addWord = (word: string): void => {
    if (ids.has(word)) return;
    const parts = applyMerges([...word], ranks);
    parts.reduce((left, right) => merge(left, right));
  };
  const newline = BYTE_TO_CHAR[0x0a];
  const space = BYTE_TO_CHAR[0x20];
  addWord(newline + newline);
  const words = [...new Set(options.words ?? [])];
  for (const word of words) if (word.startsWith(space) && word.length > 2) addWord(word.slice(1));
  for (const word of words) addWord(word);
  if (options.normalSize !== undefined) {
    for (const word of syntheticWords()) {
      if (tokens.length >= options.normalSize) break;
      addWord(word);
    }
    if (tokens.length !== options.normalSize) throw new VocabularyError(`could not reach ${options.normalSize} ordinary tokens`);
  }
  const normalCount = tokens.length;
  for (const [text, type] of options.specialTokens ?? SPECIAL_TOKENS) add(text, type);
  for (const text of options.extraSpecial ?? []) add(text, TokenType.CONTROL);
  if (options.totalSize !== undefined) {
    if (options.totalSize < tokens.length) throw new VocabularyError(`vocabulary already holds ${tokens.length} tokens`);
    while (tokens.length < options.totalSize) add(`[PAD${tokens.length}]`, TokenType.UNUSED);
  }
  const special = Object.fromEntries(
    Object.entries(SPECIAL).map(([role, text]) => [role, ids.get(text) ?? -1]),
  ) as Record<keyof typeof SPECIAL, number>;
  return { tokens, types, merges, special, ids, normalCount };
}

/**
 * Synthetic ASCII words for a large vocabulary: lowercase letter strings of growing length, each
 * followed by its space-led twin, in a fixed order. Every prefix of a word (and the bare word of
 * a space-led one) comes earlier, so each word adds exactly one token and one merge.
 */
function* syntheticWords(): Generator<string> {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const space = BYTE_TO_CHAR[0x20];
  let level = [...letters];
  for (const ch of letters) yield space + ch;
  for (;;) {
    const next = level.flatMap((stem) => [...letters].map((ch) => stem + ch));
    for (const word of next) {
      yield word;
      yield space + word;
    }
    level = next;
  }
}

/** Splits text into pre-tokens the way llama.cpp's deepseek-r1-qwen pre-tokenizer does. */
export function preTokenize(text: string): string[] {
  return text.match(PRE_TOKENIZE) ?? [];
}

/** Byte-level text of a string: each UTF-8 byte mapped through `BYTE_TO_CHAR`. */
export function byteLevel(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) out += BYTE_TO_CHAR[b];
  return out;
}

/**
 * Byte-level word texts worth merging in `text`: ASCII letter runs, with their leading space if
 * any. Punctuation, digits, and non-ASCII characters are left as byte tokens on purpose.
 */
export function wordPieces(text: string): string[] {
  const words: string[] = [];
  for (const piece of preTokenize(text)) {
    const word = /^[^A-Za-z ]?( ?[A-Za-z]+)$/.exec(piece)?.[1];
    if (word !== undefined && word.length > 1) words.push(byteLevel(word));
  }
  return words;
}

/**
 * Tokenizes plain text (no special tokens) with the vocabulary's merges, by merge rank as
 * llama.cpp's BPE tokenizer does, so the ids match what llama.cpp produces for the same text.
 */
export function encode(vocab: Vocabulary, text: string, ranks = mergeRanks(vocab)): number[] {
  const out: number[] = [];
  for (const piece of preTokenize(text)) {
    for (const part of applyMerges([...byteLevel(piece)], ranks)) out.push(vocab.ids.get(part)!);
  }
  return out;
}

/** BPE on one pre-token: repeatedly joins the adjacent pair with the lowest merge rank (leftmost first). */
function applyMerges(parts: string[], ranks: ReadonlyMap<string, number>): string[] {
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const rank = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = i;
      }
    }
    if (best < 0) return parts;
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
}

export function mergeRanks(vocab: Vocabulary): Map<string, number> {
  return new Map(vocab.merges.map((merge, rank) => [merge, rank]));
}

/** The UTF-8 bytes a token stands for (specials: their text). */
export function tokenBytes(vocab: Vocabulary, id: number): Buffer {
  if (id >= vocab.normalCount) return Buffer.from(vocab.tokens[id], "utf8");
  return Buffer.from([...vocab.tokens[id]].map((ch) => CHAR_TO_BYTE.get(ch)!));
}

const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((ch, b) => [ch, b]));

/** The tokenizer metadata shared by every generated model (with the R1-Distill chat template). */
export function addTokenizer(w: GgufWriter, vocab: Vocabulary): void {
  w.set("tokenizer.ggml.model", "string", "gpt2")
    .set("tokenizer.ggml.pre", "string", PRE_TOKENIZER)
    .setArray("tokenizer.ggml.tokens", "string", vocab.tokens)
    .setArray("tokenizer.ggml.token_type", "i32", vocab.types)
    .setArray("tokenizer.ggml.merges", "string", vocab.merges)
    .set("tokenizer.ggml.bos_token_id", "u32", vocab.special.bos)
    .set("tokenizer.ggml.eos_token_id", "u32", vocab.special.eos)
    .set("tokenizer.ggml.padding_token_id", "u32", vocab.special.pad)
    .set("tokenizer.ggml.add_bos_token", "bool", true)
    .set("tokenizer.ggml.add_eos_token", "bool", false)
    .set("tokenizer.chat_template", "string", R1_DISTILL_CHAT_TEMPLATE);
}

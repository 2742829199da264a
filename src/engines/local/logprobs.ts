import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import type { TokenLogprob } from "../types.ts";

/**
 * Log-probabilities of the tokens a local model samples, for OpenAI's `logprobs`/`top_logprobs`.
 *
 * node-llama-cpp's LlamaChat (which does the chat template, the reasoning split, stop triggers
 * and budgets) never asks llama.cpp for probabilities; it samples through
 * `sequence.evaluate(...)`. For a request that wants logprobs, `LogprobRecorder.install` shadows
 * that one method on the (exclusively held) sequence with `evaluateWithMetadata(…, {confidence,
 * probabilities})` — the same sampler, the same tokens — and records what each sampled token came
 * with. The chat's response chunks then name the tokens they carry, and `take` hands out their
 * records: sampled tokens that never reach the answer (EOS, `<think>`, a stop sequence) are
 * skipped, tokens the chat forced (a thought budget's `</think>`) have none.
 *
 * What the numbers are: the distribution the token was drawn from, as llama.cpp's sampler chain
 * left it — after logit_bias and penalties and, when sampling (temperature > 0), after top-k (40),
 * top-p and temperature (llama-server's `post_sampling_probs`). With temperature 0 that is the
 * model's whole distribution. Probabilities that underflow are reported as −9999 (OpenAI's floor).
 */

/** The logprob OpenAI reports for a probability too small to represent. */
export const LOGPROB_FLOOR = -9999;

export interface Sampled {
  token: Token;
  confidence: number | undefined;
  probabilities: Map<Token, number> | undefined;
}

type EvaluateOptions = Parameters<LlamaContextSequence["evaluate"]>[1];

export class LogprobRecorder {
  private readonly sampled: Sampled[] = [];
  private installed: LlamaContextSequence | null = null;

  constructor(
    private readonly texts: TokenTexts,
    /** Alternatives per token (0–20). */
    readonly top: number,
  ) {}

  /** Makes `sequence.evaluate` record probabilities until `uninstall`. */
  install(sequence: LlamaContextSequence): void {
    const recorder = this;
    const metadata = { confidence: true, probabilities: this.top > 0 } as const;
    const evaluate = async function* (tokens: Token[], options?: EvaluateOptions): AsyncGenerator<Token, void, Token | Token[] | undefined> {
      const iterator = sequence.evaluateWithMetadata(tokens, metadata, options);
      let input: Token | Token[] | undefined;
      try {
        while (true) {
          const { value, done } = await iterator.next(input as never);
          if (done) return;
          const next = value as { token: Token; confidence?: number; probabilities?: Map<Token, number> };
          recorder.sampled.push({ token: next.token, confidence: next.confidence, probabilities: next.probabilities });
          input = yield next.token;
        }
      } finally {
        await iterator.return(undefined as never);
      }
    };
    Object.defineProperty(sequence, "evaluate", { value: evaluate, configurable: true, writable: true });
    this.installed = sequence;
  }

  uninstall(): void {
    // Removing the own property uncovers the prototype's method again.
    if (this.installed) delete (this.installed as unknown as Record<string, unknown>).evaluate;
    this.installed = null;
  }

  /** Sampled tokens recorded so far (the raw completion path reads them one by one). */
  get count(): number {
    return this.sampled.length;
  }

  /**
   * The records of `tokens` (a response chunk's tokens, in order), oldest first. Records of
   * sampled tokens that were dropped in between are discarded on the way.
   */
  take(tokens: readonly Token[]): TokenLogprob[] {
    const out: TokenLogprob[] = [];
    for (const token of tokens) {
      const at = this.sampled.findIndex((s) => s.token === token);
      if (at < 0) continue;
      const [record] = this.sampled.splice(0, at + 1).slice(-1);
      out.push(this.present(record!));
    }
    return out;
  }

  private present(record: Sampled): TokenLogprob {
    return tokenLogprob(this.texts, this.top, record);
  }
}

/** One sampled token in the API's shape, with up to `top` alternatives. */
export function tokenLogprob(texts: TokenTexts, top: number, record: Sampled): TokenLogprob {
  const probability = record.confidence ?? record.probabilities?.get(record.token) ?? 0;
  const alternatives: TokenLogprob["top"] = [];
  if (record.probabilities && top > 0) {
    // The addon returns the candidates sorted by logit, most likely first.
    for (const [token, p] of record.probabilities) {
      if (alternatives.length >= top) break;
      alternatives.push({ token: texts.text(token), logprob: toLogprob(p), bytes: texts.bytes(token) });
    }
  }
  return { token: texts.text(record.token), logprob: toLogprob(probability), bytes: texts.bytes(record.token), top: alternatives };
}

export function toLogprob(probability: number): number {
  if (!(probability > 0)) return LOGPROB_FLOOR;
  return Math.max(LOGPROB_FLOOR, Math.log(probability));
}

/**
 * Mirrors StreamTidy (src/engines/streamTidy.ts) on logprob tokens, so the tokens of a channel
 * spell exactly its text where whitespace comes as whole tokens: whitespace-only tokens before a
 * channel's first text are dropped, and trailing ones are held until more text of the channel follows.
 */
export class LogprobTidy {
  private started = { reasoning: false, content: false };
  private held: Record<"reasoning" | "content", TokenLogprob[]> = { reasoning: [], content: [] };

  tidy(channel: "reasoning" | "content", tokens: TokenLogprob[]): TokenLogprob[] {
    const out: TokenLogprob[] = [];
    for (const token of tokens) {
      const blank = token.token.trim() === "";
      if (!this.started[channel]) {
        if (blank) continue;
        this.started[channel] = true;
      }
      if (blank) {
        this.held[channel].push(token);
        continue;
      }
      out.push(...this.held[channel], token);
      this.held[channel] = [];
    }
    return out;
  }
}

/**
 * Each token's text and exact bytes. llama.cpp's detokenizer hands a lone byte of a multi-byte
 * character to JavaScript as U+FFFD, so the bytes come from the vocabulary: byte-level BPE (gpt2)
 * token texts map back through GPT-2's byte table, SentencePiece byte tokens are `<0xXX>`; special
 * tokens (and other vocabularies) are their UTF-8 text.
 */
export class TokenTexts {
  private readonly cache = new Map<Token, { text: string; bytes: number[] }>();
  private readonly vocabulary: readonly unknown[] | undefined;
  private readonly kind: string | undefined;

  constructor(private readonly model: Pick<LlamaModel, "detokenize" | "fileInfo">) {
    const ggml = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown; model?: unknown } } }).tokenizer?.ggml;
    this.vocabulary = Array.isArray(ggml?.tokens) ? ggml.tokens : undefined;
    this.kind = typeof ggml?.model === "string" ? ggml.model : undefined;
  }

  text(token: Token): string {
    return this.entry(token).text;
  }

  bytes(token: Token): number[] {
    return this.entry(token).bytes;
  }

  private entry(token: Token): { text: string; bytes: number[] } {
    let entry = this.cache.get(token);
    if (!entry) {
      const bytes = this.decode(token);
      entry = { text: Buffer.from(bytes).toString("utf8"), bytes };
      if (this.cache.size < 65_536) this.cache.set(token, entry);
    }
    return entry;
  }

  private decode(token: Token): number[] {
    const piece = this.vocabulary?.[token];
    if (typeof piece === "string") {
      if (this.kind === "gpt2") {
        const bytes: number[] = [];
        for (const ch of piece) {
          const b = CHAR_TO_BYTE.get(ch);
          if (b === undefined) return [...Buffer.from(piece, "utf8")];
          bytes.push(b);
        }
        return bytes;
      }
      if (this.kind === "llama") {
        const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
        if (byte) return [parseInt(byte[1]!, 16)];
        return [...Buffer.from(piece.replaceAll("\u2581", " "), "utf8")];
      }
    }
    return [...Buffer.from(this.model.detokenize([token], true), "utf8")];
  }
}

/** GPT-2's byte → printable character table, inverted (byte-level BPE token texts → bytes). */
const CHAR_TO_BYTE: ReadonlyMap<string, number> = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map = new Map<string, number>();
  for (const b of printable) map.set(String.fromCodePoint(b), b);
  let next = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) map.set(String.fromCodePoint(256 + next++), b);
  return map;
})();

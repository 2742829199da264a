import { TokenBias, type LlamaModel, type Token } from "node-llama-cpp";
import { EngineError, type GenerationRequest } from "../types.ts";

/**
 * OpenAI's sampling parameters, mapped onto llama.cpp's samplers with OpenAI's meaning:
 *
 * - `frequency_penalty` / `presence_penalty`: the logit of token j drops by
 *   `count(j) × frequency + (count(j) > 0) × presence`, where count(j) counts j in the tokens
 *   generated so far in this answer (reasoning included) — every one of them, newlines too. That
 *   is llama.cpp's penalty sampler with the multiplicative repeat penalty off (1), newlines not
 *   exempted (node-llama-cpp exempts them by default) and a window as long as the answer can get
 *   (node-llama-cpp's default looks back only 64 tokens). Negative values encourage repeats, as
 *   OpenAI allows.
 * - `logit_bias`: the bias is added to the token's logit before sampling; −100 bans the token
 *   (OpenAI: "should result in a ban"), which llama.cpp does with −∞.
 */

/** Most entries a `logit_bias` may have (OpenAI's own limit). */
export const MAX_LOGIT_BIAS_ENTRIES = 300;

export interface PenaltyOptions {
  lastTokens: number;
  penalty: 1;
  penalizeNewLine: true;
  frequencyPenalty?: number;
  presencePenalty?: number;
}

/**
 * LlamaChat's `repeatPenalty` for a request: `false` (off, OpenAI's default) unless a penalty is
 * asked for. `window` is the longest the answer can get.
 */
export function penaltyOptions(request: GenerationRequest, window: number): PenaltyOptions | false {
  const frequency = request.frequencyPenalty ?? 0;
  const presence = request.presencePenalty ?? 0;
  if (frequency === 0 && presence === 0) return false;
  return {
    lastTokens: Math.max(1, window),
    penalty: 1,
    penalizeNewLine: true,
    ...(frequency !== 0 ? { frequencyPenalty: frequency } : {}),
    ...(presence !== 0 ? { presencePenalty: presence } : {}),
  };
}

/** The same penalties in the shape `LlamaContextSequence.evaluate` takes (for raw completions). */
export function sequencePenalty(options: PenaltyOptions | false, generated: () => Token[]) {
  if (!options) return undefined;
  return {
    punishTokens: generated,
    maxPunishTokens: options.lastTokens,
    penalty: options.penalty,
    ...(options.frequencyPenalty !== undefined ? { frequencyPenalty: options.frequencyPenalty } : {}),
    ...(options.presencePenalty !== undefined ? { presencePenalty: options.presencePenalty } : {}),
  };
}

/** Refuses token ids the model does not have (OpenAI answers 400 for them too). No tokenizing. */
export function checkLogitBias(request: GenerationRequest, vocabularySize: number): void {
  const bias = request.logitBias;
  if (!bias) return;
  for (const key of Object.keys(bias)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id >= vocabularySize) {
      throw new EngineError(
        `logit_bias names token ${JSON.stringify(key)}, but the model '${request.model}' has token ids 0 to ${vocabularySize - 1}.`,
        400,
        "invalid_logit_bias",
        "logit_bias",
      );
    }
  }
}

/**
 * The request's logit bias as node-llama-cpp's TokenBias, or undefined. Written to the bias map
 * directly: `TokenBias.set` skips end-of-generation tokens (node-llama-cpp 3.21.1), and biasing EOS
 * is a legitimate use (shorter or longer answers) that OpenAI's API allows.
 */
export function tokenBiasFor(model: LlamaModel, request: GenerationRequest): TokenBias | undefined {
  const bias = request.logitBias;
  if (!bias || Object.keys(bias).length === 0) return undefined;
  const tokenBias = new TokenBias(model.tokenizer);
  const map = (tokenBias as unknown as { _biases: Map<number, number> })._biases;
  for (const [key, value] of Object.entries(bias)) {
    if (value === 0) continue;
    map.set(Number(key), value <= -100 ? Number.NEGATIVE_INFINITY : value);
  }
  return tokenBias;
}

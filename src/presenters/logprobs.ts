import type { TokenLogprob } from "../engines/types.ts";

/**
 * Log-probability shapes. Chat (OpenAI): `choices[].logprobs.content` is a list of
 * `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`; Sputnik adds
 * `logprobs.reasoning_content`, the same list for the reasoning tokens of a reasoning model (named
 * after `message.reasoning_content`). Legacy completions: `{tokens, token_logprobs, top_logprobs,
 * text_offset}`.
 */

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export function presentTokenLogprobs(tokens: readonly TokenLogprob[]): ChatTokenLogprob[] {
  return tokens.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes, top_logprobs: t.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })) }));
}

/** A chat choice's `logprobs` object; reasoning tokens only for reasoning models. */
export function presentChatLogprobs(content: readonly TokenLogprob[], reasoning: readonly TokenLogprob[] | null) {
  return {
    content: presentTokenLogprobs(content),
    ...(reasoning !== null ? { reasoning_content: presentTokenLogprobs(reasoning) } : {}),
  };
}

/** Collects a stream's logprobs events per channel. */
export class LogprobsCollector {
  readonly content: TokenLogprob[] = [];
  readonly reasoning: TokenLogprob[] = [];

  add(channel: "content" | "reasoning", tokens: readonly TokenLogprob[]): void {
    (channel === "content" ? this.content : this.reasoning).push(...tokens);
  }

  /** Takes (and clears) what was collected for one channel. */
  take(channel: "content" | "reasoning"): TokenLogprob[] {
    const list = channel === "content" ? this.content : this.reasoning;
    return list.splice(0, list.length);
  }
}

export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/** OpenAI's legacy completions `logprobs`; `offset` is where these tokens start in the choice's text. */
export function presentLegacyLogprobs(tokens: readonly TokenLogprob[], offset = 0): LegacyLogprobs {
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const t of tokens) {
    out.tokens.push(t.token);
    out.token_logprobs.push(t.logprob);
    out.top_logprobs.push(Object.fromEntries(t.top.map((a) => [a.token, a.logprob])));
    out.text_offset.push(at);
    at += t.token.length;
  }
  return out;
}

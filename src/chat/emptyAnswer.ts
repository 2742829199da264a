/**
 * What a message holds before any answer is written: no text, no tokens, no timings. The store
 * writes it into a new message and into an answer being retried; the web app into the message it
 * shows while the server has not answered yet. No imports: the web app's bundle reads this file too.
 */
export const EMPTY_ANSWER = {
  content: "",
  reasoning: "",
  error: null,
  prompt_tokens: 0,
  completion_tokens: 0,
  reasoning_tokens: 0,
  ttft_ms: null,
  reasoning_ms: null,
  total_ms: null,
} as const;

import type { LlamaContext } from "node-llama-cpp";

/**
 * Makes a context's samplings (every read of a batch's logits) run one after another.
 *
 * Why: with one KV stream per sequence (node-llama-cpp 3.21 hard-codes `kv_unified = false`),
 * llama.cpp splits a batch that carries a long prompt on a lower sequence id and one token on a
 * higher one into micro-batches that compute the short one's output first. It then records the
 * rows to swap back into batch order (`output_swaps`) and swaps them lazily, in
 * `llama_context::output_reorder()`, on the first `llama_get_logits_ith` after the decode, with
 * no lock. node-llama-cpp samples each output of a batch as its own job on libuv's thread pool,
 * all at once: with more than one pool thread, two samplings can apply the swaps twice (undoing
 * them) or read a row mid-swap, and two sequences get each other's next token. Seen as a scripted
 * model answering with "!!!!" (an empty answer once everything after the slip counted as
 * reasoning) about once in a hundred such batches.
 *
 * `bin/sputnik.js` gives libuv one thread, which already runs the samplings one at a time; an
 * operator's own UV_THREADPOOL_SIZE and in-process use (the tests) do not. Samplings are short next
 * to the decode that precedes them, so queueing them costs little even where threads are spare.
 */
export function oneSamplingAtATime(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: Record<string, unknown> })._ctx;
  const sample = native?.sampleToken;
  if (!native || typeof sample !== "function") throw new Error("node-llama-cpp's context has no native sampleToken: check the pinned version (3.21.1)");
  let last: Promise<unknown> = Promise.resolve();
  // An own property shadows the addon's read-only prototype method.
  Object.defineProperty(native, "sampleToken", {
    configurable: true,
    writable: true,
    value: (...args: unknown[]) => {
      const run = last.then(() => (sample as (...a: unknown[]) => Promise<unknown>).apply(native, args));
      last = run.catch(() => undefined);
      return run;
    },
  });
}

import type { LlamaContextSequence, Token } from "node-llama-cpp";
import type { ContextCache } from "./contextCache.ts";
import { sharedPrefixLength } from "./sequencePool.ts";

/** Loading a state file costs tens of milliseconds; below this gain, evaluating is as quick. */
const MIN_LOAD_GAIN = 64;

export interface Placement {
  /** Prompt tokens restored from the disk cache (0 when nothing was loaded). */
  loadedTokens: number;
  /** Whether the sequence's previous content was written to the disk cache first. */
  saved: boolean;
}

/**
 * Prepares `sequence` (just taken from the pool) for `prompt`: when the disk cache holds a clearly
 * longer prefix of the prompt than the sequence has in memory, that state is loaded; and whatever
 * the sequence held that is about to be overwritten is saved first if it is worth keeping, so a
 * conversation pushed out of memory can come back later, or after a restart.
 */
export async function placePrefix(cache: ContextCache, sequence: LlamaContextSequence, prompt: readonly Token[]): Promise<Placement> {
  const held = sequence.contextTokens;
  const inMemory = sharedPrefixLength(held, prompt);
  const hit = cache.lookup(prompt);
  const load = hit !== null && hit.shared >= inMemory + MIN_LOAD_GAIN ? hit : null;
  const kept = load ? 0 : inMemory;
  const overwritten = held.length - kept;
  let saved = false;
  if (held.length >= cache.minTokens && overwritten >= MIN_LOAD_GAIN) saved = (await cache.save(sequence)) !== null;
  if (!load) return { loadedTokens: 0, saved };
  const ok = await cache.load(load.entry, sequence);
  return { loadedTokens: ok ? load.shared : 0, saved };
}

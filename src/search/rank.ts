/**
 * A small in-memory BM25 ranking, for texts that are not in the database's index: the passages of
 * web pages fetched for one question, together with the search engine's snippets. A few hundred
 * passages at most per question, so scoring them all in memory is cheap; the database's own
 * full-text index (src/search/store) ranks the user's documents.
 *
 * Terms are lower-cased runs of letters and digits (Unicode-aware), so "Sputnik's" matches
 * "sputnik" and CJK text still yields terms; very common English words are dropped from the query
 * so that "what is the …" does not rank every passage alike.
 */

export interface Ranked<T> {
  item: T;
  score: number;
}

/** BM25's usual constants: term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;
/** Longest text tokenized per document: a bound on the work, whatever a page holds. */
const MAX_TERMS_CHARS = 20_000;

const STOP_WORDS = new Set(
  "a an and are as at be but by did do does for from had has have how i in is it its of on or that the their them then there these they this to was were what when where which who why will with you your".split(" "),
);

/** The terms of `text`: lower-cased letter/digit runs, bounded in length and count. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const match of text.slice(0, MAX_TERMS_CHARS).toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const term = match[0];
    if (term.length <= 64) out.push(term);
  }
  return out;
}

/** The query's distinct terms, common words dropped (all of them kept when nothing else is left). */
export function queryTerms(query: string): string[] {
  const all = [...new Set(terms(query))];
  const kept = all.filter((t) => !STOP_WORDS.has(t));
  return kept.length > 0 ? kept : all;
}

/**
 * Ranks `items` against `query` by BM25 over `textOf(item)`, best first; items that share no term
 * with the query score 0 and come last (in their original order, so the ranking is stable).
 */
export function rankBm25<T>(query: string, items: readonly T[], textOf: (item: T) => string): Ranked<T>[] {
  const q = queryTerms(query);
  const docs = items.map((item) => {
    const tf = new Map<string, number>();
    const list = terms(textOf(item));
    for (const t of list) tf.set(t, (tf.get(t) ?? 0) + 1);
    return { item, tf, length: list.length };
  });
  const n = docs.length;
  const avgLength = n === 0 ? 0 : docs.reduce((sum, d) => sum + d.length, 0) / n;
  const idf = new Map<string, number>();
  for (const t of q) {
    const df = docs.reduce((count, d) => count + (d.tf.has(t) ? 1 : 0), 0);
    // The "plus one" form: never negative, so a term in most documents still counts a little.
    idf.set(t, Math.log(1 + (n - df + 0.5) / (df + 0.5)));
  }
  const scored = docs.map((d, index) => {
    let score = 0;
    for (const t of q) {
      const f = d.tf.get(t);
      if (!f) continue;
      const norm = avgLength > 0 ? 1 - B + (B * d.length) / avgLength : 1;
      score += idf.get(t)! * ((f * (K1 + 1)) / (f + K1 * norm));
    }
    return { item: d.item, score, index };
  });
  scored.sort((a, b) => b.score - a.score || a.index - b.index);
  return scored.map(({ item, score }) => ({ item, score }));
}

/** Reciprocal rank fusion's constant (Cormack et al., 2009): damps the weight of the very top ranks. */
export const RRF_K = 60;

/**
 * Merges ranked lists by reciprocal rank fusion: an item's score is the sum over the lists of
 * 1 / (k + rank), rank counted from 0. Only ranks count, so lists scored on different scales (BM25,
 * ts_rank_cd, cosine similarity) fuse fairly, and an item high in several lists beats one high in
 * one. Items with the same `keyOf` are one item (the first seen is kept); ties keep first-seen order.
 */
export function reciprocalRankFusion<T>(lists: ReadonlyArray<readonly T[]>, keyOf: (item: T) => unknown = (item) => item, k: number = RRF_K): Ranked<T>[] {
  const fused = new Map<unknown, { item: T; score: number; order: number }>();
  for (const list of lists) {
    list.forEach((item, rank) => {
      const key = keyOf(item);
      const entry = fused.get(key);
      if (entry) entry.score += 1 / (k + rank);
      else fused.set(key, { item, score: 1 / (k + rank), order: fused.size });
    });
  }
  return [...fused.values()].sort((a, b) => b.score - a.score || a.order - b.order).map(({ item, score }) => ({ item, score }));
}

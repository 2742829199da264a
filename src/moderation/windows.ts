/**
 * Sentence-sized windows: the unit moderation checks, on a stream (src/moderation/outputCheck.ts)
 * and on whole texts (the input). A window ends after a sentence end — `.`, `!`, `?`, `…` (with
 * closing quotes or brackets) followed by white space, a CJK full stop, or a line break — or, for
 * a run-on text, at the last space before WINDOW_MAX_CHARS (at WINDOW_MAX_CHARS when there is
 * none). The cap bounds both what one pattern match reads and how much text is held back before
 * it is checked.
 */

export const WINDOW_MAX_CHARS = 400;

const TERMINATORS = new Set([".", "!", "?", "…"]);
/** Full-width sentence ends: CJK text has no space after them. */
const CJK_TERMINATORS = new Set(["。", "！", "？", "｡"]);
const CLOSERS = new Set(['"', "'", ")", "]", "»", "”", "’", "」", "』", "】", "）"]);

/**
 * The length of the first complete window at the start of `text`; 0 when none is complete yet.
 * `final`: the text ends here (the stream ended), so whatever is left is a window.
 */
export function windowLength(text: string, final: boolean, max = WINDOW_MAX_CHARS): number {
  if (text.length === 0) return 0;
  const limit = Math.min(text.length, max);
  for (let i = 0; i < limit; i++) {
    const c = text[i]!;
    if (c === "\n") return i + 1;
    const cjk = CJK_TERMINATORS.has(c);
    if (!cjk && !TERMINATORS.has(c)) continue;
    let end = i + 1;
    while (end < text.length && (CLOSERS.has(text[end]!) || TERMINATORS.has(text[end]!) || CJK_TERMINATORS.has(text[end]!))) end++;
    if (end > max) break;
    if (end === text.length) {
      // Is "4." the end of a sentence or of "4.2"? Only the next character (or the end) tells.
      if (final) return end;
      return cjk ? end : 0;
    }
    if (cjk || /\s/.test(text[end]!)) return end;
    i = end - 1;
  }
  if (text.length < max) return final ? text.length : 0;
  // A run-on text: cut at the last space in the second half of the window, so words stay whole.
  const space = text.lastIndexOf(" ", max - 1);
  const cut = space >= max / 2 ? space + 1 : max;
  // Never between the two halves of a surrogate pair.
  return isHighSurrogate(text.charCodeAt(cut - 1)) ? cut - 1 : cut;
}

/** A whole text as consecutive windows (their concatenation is `text`). */
export function splitWindows(text: string, max = WINDOW_MAX_CHARS): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const n = windowLength(rest, true, max);
    out.push(rest.slice(0, n));
    rest = rest.slice(n);
  }
  return out;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

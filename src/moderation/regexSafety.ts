/**
 * Operator-supplied block patterns are compiled once, at start, and refused when their matching
 * time could blow up. JavaScript's regex engine backtracks: `(a+)+$` takes exponential time on a
 * few dozen characters, and a pattern with many unbounded repetitions takes polynomial time of a
 * high degree. A moderation window is at most WINDOW_MAX_CHARS long (src/moderation/windows.ts),
 * which bounds the polynomial cases once the number of repetitions is bounded too.
 *
 * Refused (with the reason, so the operator can rewrite the pattern):
 * - backreferences (`\1`, `\k<name>`): matching them is NP-hard in general;
 * - a repeated group that itself repeats or branches — `(a+)+`, `(a*)*`, `(a|ab)*`, `(?:x|y){2,}` —
 *   the classic exponential shapes (star height above one, or an ambiguous repeated alternation);
 * - more than MAX_UNBOUNDED unbounded quantifiers (`*`, `+`, `{n,}`, or `{n,m}` with m > 100).
 *
 * Lookarounds, classes, anchors, `?`, small counts (`\d{3}`) and alternation outside a
 * repetition are fine. What remains can still be polynomial (`\s*\s*x` on 400 spaces takes a
 * quarter of a second), so every match also runs under a time limit (src/moderation/matcher.ts).
 */

/** At most this many unbounded quantifiers per pattern: bounds the polynomial degree of a search. */
export const MAX_UNBOUNDED = 3;
/** A counted repetition above this many counts as unbounded. */
const LARGE_COUNT = 100;
/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 500;
/** Flags every pattern is compiled with: case-insensitive, Unicode (as the word lists are). */
export const PATTERN_FLAGS = "iu";

export class UnsafePatternError extends Error {}

/** What a closed group or a single atom contains, as the quantifier after it sees it. */
interface Atom {
  repeats: boolean;
  branches: boolean;
}

interface Frame extends Atom {
  /** The last atom inside this group, which a quantifier would apply to. */
  last: Atom | null;
}

/**
 * Compiles `source` with PATTERN_FLAGS after checking that its matching time is bounded. Throws
 * UnsafePatternError (or the engine's SyntaxError for an invalid pattern) naming the problem.
 */
export function compileSafePattern(source: string, flags = PATTERN_FLAGS): RegExp {
  if (source.length === 0) throw new UnsafePatternError("an empty pattern matches everything");
  if (source.length > MAX_PATTERN_LENGTH) throw new UnsafePatternError(`longer than ${MAX_PATTERN_LENGTH} characters`);
  const regex = new RegExp(source, flags); // syntax first: the scan below assumes a valid pattern
  checkPattern(source);
  if (regex.test("")) throw new UnsafePatternError("it matches the empty text, so it would match everything");
  return regex;
}

/** Throws UnsafePatternError when `source` (a valid Unicode-mode pattern) has an unbounded-time shape. */
export function checkPattern(source: string): void {
  const stack: Frame[] = [{ repeats: false, branches: false, last: null }];
  let unbounded = 0;
  const top = () => stack[stack.length - 1]!;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || (next === "k" && source[i + 2] === "<")) throw new UnsafePatternError("backreferences are not allowed");
      // \p{…}, \u{…}, \x41, \cA: skip the escape's own braces so they are not read as a quantifier.
      if ((next === "p" || next === "P" || next === "u") && source[i + 2] === "{") i = source.indexOf("}", i + 2);
      else i += 1;
      top().last = { repeats: false, branches: false };
    } else if (c === "[") {
      i = classEnd(source, i);
      top().last = { repeats: false, branches: false };
    } else if (c === "(") {
      // Skip the group's prefix: (?:  (?=  (?!  (?<=  (?<!  (?<name>
      if (source[i + 1] === "?") {
        if (source[i + 2] === "<" && source[i + 3] !== "=" && source[i + 3] !== "!") i = source.indexOf(">", i);
        else i += source[i + 2] === "<" ? 3 : 2;
      }
      stack.push({ repeats: false, branches: false, last: null });
    } else if (c === ")") {
      const closed = stack.pop()!;
      const atom = { repeats: closed.repeats, branches: closed.branches };
      top().repeats ||= atom.repeats;
      top().last = atom;
    } else if (c === "|") {
      top().branches = true;
      top().last = null;
    } else if (c === "*" || c === "+" || c === "?" || c === "{") {
      let repeating = c !== "?";
      let endless = c === "*" || c === "+";
      if (c === "{") {
        const close = source.indexOf("}", i);
        const bounds = /^\{(\d+)(,(\d*))?\}$/.exec(source.slice(i, close + 1));
        // The pattern compiled, so a `{` here is a quantifier (Unicode mode has no literal `{`).
        const max = bounds?.[2] === undefined ? Number(bounds?.[1]) : bounds[3] === "" ? Infinity : Number(bounds[3]);
        repeating = max > 1;
        endless = max > LARGE_COUNT;
        i = close;
      }
      if (source[i + 1] === "?") i += 1; // lazy: the same search space
      const atom = top().last;
      if (repeating) {
        if (atom?.repeats) throw new UnsafePatternError("a repeated group must not repeat inside, as in (a+)+");
        if (atom?.branches) throw new UnsafePatternError("a repeated group must not branch, as in (a|ab)*");
        if (endless && ++unbounded > MAX_UNBOUNDED) throw new UnsafePatternError(`more than ${MAX_UNBOUNDED} unbounded repetitions (*, +, {n,})`);
        top().repeats = true;
      }
      top().last = null;
    } else {
      top().last = { repeats: false, branches: false };
    }
  }
}

/** The index of the `]` closing the class that opens at `start`. */
function classEnd(source: string, start: number): number {
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === "\\") i += 1;
    else if (source[i] === "]") return i; // Unicode mode: the first unescaped `]` closes it (`[]` is the empty class)
  }
  return source.length;
}

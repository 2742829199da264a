import vm from "node:vm";
import { compileSafePattern, PATTERN_FLAGS } from "./regexSafety.ts";
import { WINDOW_MAX_CHARS } from "./windows.ts";

/**
 * A policy's word and pattern lists, compiled once at start: does a window of text contain a
 * blocked word or match a blocked pattern, outside every allowed phrase?
 *
 * - Words and phrases match case-insensitively after Unicode NFKC normalisation (full-width and
 *   compatibility forms fold to their plain letters), as whole words: "42" does not match "420".
 *   Words written in scripts without spaces (Chinese, Japanese, Thai…) match anywhere.
 * - Patterns are JavaScript regular expressions, compiled with the `iu` flags after the safety
 *   check of src/moderation/regexSafety.ts, and run under MATCH_TIME_LIMIT_MS per window: a match
 *   that runs out of time counts as a hit (a text crafted to stall a pattern must not slip past it).
 * - `allow` words exempt a hit that lies inside one of them: block "kill", allow "kill the process".
 * - At most WINDOW_MAX_CHARS characters are read per call; longer texts are split by the caller.
 */

/**
 * Wall-clock limit of one window's pattern matching (per policy). Ordinary patterns take
 * microseconds on a window; the limit is there for the polynomial shapes the static check lets
 * through, with room for a loaded machine (a spurious timeout would withhold an innocent answer).
 */
export const MATCH_TIME_LIMIT_MS = 100;

export interface TextRule {
  words: readonly string[];
  patterns: readonly string[];
  allow: readonly string[];
}

export interface TextHit {
  source: "words" | "patterns";
  /** The words or pattern match that tripped (trimmed to 80 characters), or why a pattern timed out. */
  matched: string;
}

const NO_SPACE_SCRIPTS = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
const WORD_CHAR = "[\\p{L}\\p{N}\\p{M}_]";

export class TextMatcher {
  private readonly words: RegExp | null;
  private readonly allow: RegExp | null;
  private readonly patterns: Array<{ source: string; regex: RegExp }>;
  private readonly context = vm.createContext({ job: null as null | (() => TextHit | null) });
  private static readonly runner = new vm.Script("job()");

  constructor(rule: TextRule) {
    this.words = wordsRegex(rule.words);
    this.allow = wordsRegex(rule.allow);
    // `g`: every match is visited, so a hit inside an allowed phrase does not hide a later one.
    this.patterns = rule.patterns.map((source) => ({ source, regex: compileSafePattern(source, `${PATTERN_FLAGS}g`) }));
    // V8 compiles a regex and the context's script at first use: do it now, not under a request's time limit.
    if (this.patterns.length > 0) this.match("warm-up text.");
  }

  get empty(): boolean {
    return this.words === null && this.patterns.length === 0;
  }

  /** The first hit in `text` (at most WINDOW_MAX_CHARS of it are read), or null. */
  match(text: string): TextHit | null {
    const normalized = text.slice(0, WINDOW_MAX_CHARS).normalize("NFKC");
    const allowed = this.allow ? spans(this.allow, normalized) : [];
    const exempt = (start: number, end: number) => allowed.some(([a, b]) => a <= start && end <= b);
    if (this.words) {
      for (const [start, end] of spans(this.words, normalized)) {
        if (!exempt(start, end)) return { source: "words", matched: clip(normalized.slice(start, end)) };
      }
    }
    if (this.patterns.length === 0) return null;
    this.context.job = () => {
      for (const { regex } of this.patterns) {
        for (const [start, end] of spans(regex, normalized)) {
          if (!exempt(start, end)) return { source: "patterns", matched: clip(normalized.slice(start, end)) };
        }
      }
      return null;
    };
    try {
      return TextMatcher.runner.runInContext(this.context, { timeout: MATCH_TIME_LIMIT_MS }) as TextHit | null;
    } catch (error) {
      if ((error as { code?: string }).code !== "ERR_SCRIPT_EXECUTION_TIMEOUT") throw error;
      return { source: "patterns", matched: `(matching ran past ${MATCH_TIME_LIMIT_MS} ms)` };
    } finally {
      this.context.job = null;
    }
  }
}

/** One regex matching any of `words` as a whole word (anywhere, for scripts written without spaces). */
function wordsRegex(list: readonly string[]): RegExp | null {
  const words = [...new Set(list.map((w) => w.normalize("NFKC").trim()).filter((w) => w !== ""))];
  if (words.length === 0) return null;
  // Longest first: "kill the process" is tried before "kill" at the same place.
  words.sort((a, b) => b.length - a.length);
  const alternatives = words.map((word) => {
    const escaped = escapeRegex(word).replace(/\s+/g, "\\s+");
    const before = NO_SPACE_SCRIPTS.test(word[0]!) ? "" : `(?<!${WORD_CHAR})`;
    const after = NO_SPACE_SCRIPTS.test(word.at(-1)!) ? "" : `(?!${WORD_CHAR})`;
    return `${before}${escaped}${after}`;
  });
  return new RegExp(alternatives.join("|"), `${PATTERN_FLAGS}g`);
}

/** Every [start, end) a global regex matches in `text`. */
function spans(regex: RegExp, text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  regex.lastIndex = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    out.push([m.index, m.index + m[0].length]);
    if (m[0].length === 0) regex.lastIndex += 1;
  }
  return out;
}

function escapeRegex(text: string): string {
  // Only the syntax characters: Unicode mode refuses needless escapes such as `\-`.
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/**
 * Text normalisation and bounded matching for the rule classifier.
 *
 * Exports:
 *   MAX_MATCH_CHARS                       texts are cut to this many UTF-16 units before matching
 *   normaliseForMatching(text) → string   NFKC, case-folded, script folds, whitespace collapsed
 *   countUnits(normalised) → number       words, with two CJK characters counting as one
 *   normalisedTerm(term) → string         normaliseForMatching, cached (suite terms)
 *   matchTerm(normalised, term) → boolean key-fact alternative matching (word start / substring)
 *   splitThink(text) → { answer, reasoning } a leaked <think>…</think> block taken out of an answer
 *
 * Every regular expression here is a single character class (with `g`), so matching is linear in
 * the text; everything else is `indexOf`. Model output is untrusted and may be huge, hence the cap.
 */

/** Model answers are capped before any matching: bounded time, and 20,000 characters is far beyond any real refusal. */
export const MAX_MATCH_CHARS = 20_000;

const ZERO_WIDTH = /[\u00AD\u200B-\u200D\u2060\uFEFF]/g;
const COMBINING_DOT_ABOVE = /\u0307/g;
const DOTLESS_I = /\u0131/g;
const SHARP_S = /\u00DF/g;
const CYRILLIC_YO = /\u0451/g;
const APOSTROPHES = /[\u2018\u2019\u201A\u201B\u02BC\u2032\u00B4]/g;
const QUOTES = /[\u201C\u201D\u201E\u201F\u00AB\u00BB\u2033]/g;
const DASHES = /[\u2010-\u2015\u2212]/g;
/** Markdown emphasis and code marks split phrases ("I **cannot** discuss") without changing them. */
const MARKDOWN_MARKS = /[*`]/g;
/** Hebrew points and cantillation (not the letters, maqaf or sof pasuq). */
const HEBREW_POINTS = /[\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7]/g;
/** Arabic harakat, Quranic marks and tatweel. */
const ARABIC_MARKS = /[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06DC\u06DF-\u06E8\u06EA-\u06ED\u0640]/g;
/** Alef with hamza/madda/wasla: written either way by models. */
const ARABIC_ALEFS = /[\u0622\u0623\u0625\u0671]/g;
const WHITESPACE = /\s+/g;

/**
 * The one normal form every text and every pattern is brought to before comparison: cut to
 * MAX_MATCH_CHARS, Unicode NFKC (full-width forms, ligatures, Arabic presentation forms), lower
 * case, then folds where models and suite authors spell the same word differently: Turkish
 * dotted/dotless i → i, ß → ss, ё → е, typographic apostrophes/quotes/dashes → ASCII, Hebrew points
 * and Arabic diacritics/tatweel removed, Arabic alef variants → ا, zero-width characters and
 * markdown `*`/backticks removed, and every run of whitespace → one space.
 */
export function normaliseForMatching(text: string): string {
  const capped = text.length > MAX_MATCH_CHARS ? text.slice(0, MAX_MATCH_CHARS) : text;
  return capped
    .normalize("NFKC")
    .toLowerCase()
    .replace(ZERO_WIDTH, "")
    .replace(COMBINING_DOT_ABOVE, "")
    .replace(DOTLESS_I, "i")
    .replace(SHARP_S, "ss")
    .replace(CYRILLIC_YO, "\u0435")
    .replace(APOSTROPHES, "'")
    .replace(QUOTES, '"')
    .replace(DASHES, "-")
    .replace(MARKDOWN_MARKS, "")
    .replace(HEBREW_POINTS, "")
    .replace(ARABIC_MARKS, "")
    .replace(ARABIC_ALEFS, "\u0627")
    .replace(WHITESPACE, " ")
    .trim();
}

const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/gu;
const WORD = /[\p{L}\p{M}\p{N}]+/gu;

/**
 * How much a text says, in "units": words (runs of letters, marks and digits), with CJK characters
 * counted two to a unit since those scripts do not separate words. 40 units is a paragraph either way.
 */
export function countUnits(normalised: string): number {
  let cjk = 0;
  const rest = normalised.replace(CJK_CHAR, () => {
    cjk += 1;
    return " ";
  });
  let words = 0;
  for (const _ of rest.matchAll(WORD)) words += 1;
  return words + Math.ceil(cjk / 2);
}

/** Suite terms are few and asked about for every answer: normalise each once. */
const TERM_CACHE = new Map<string, string>();
const TERM_CACHE_MAX = 100_000;

/** normaliseForMatching for short, repeated texts (key-fact alternatives, canned phrases), cached. */
export function normalisedTerm(term: string): string {
  let t = TERM_CACHE.get(term);
  if (t === undefined) {
    if (TERM_CACHE.size >= TERM_CACHE_MAX) TERM_CACHE.clear();
    t = normaliseForMatching(term);
    TERM_CACHE.set(term, t);
  }
  return t;
}

/** Scripts written without spaces, or with clitics glued to the front of words (Hebrew ו/ה/ב, Arabic و/ال). */
const SUBSTRING_SCRIPT = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}\p{Script=Hebrew}\p{Script=Arabic}]/u;
const WORD_CHAR = /^[\p{L}\p{M}\p{N}]$/u;
/** Acronyms and numbers ("PLA", "ROC", "212"), where a prefix match would hit other words ("place", "rock", "2120"). */
const SHORT_LATIN = /^[\p{Script=Latin}\p{Nd}]+$/u;

/**
 * Whether `ch` continues a word written in a spaced script. Characters of the substring scripts
 * are boundaries: "212" is a whole word in "即212华氏度", and "PLA" in "由PLA执行".
 */
function continuesWord(ch: string): boolean {
  return WORD_CHAR.test(ch) && !SUBSTRING_SCRIPT.test(ch);
}

function isWordCharBefore(s: string, index: number): boolean {
  if (index <= 0) return false;
  const code = s.charCodeAt(index - 1);
  const start = code >= 0xdc00 && code <= 0xdfff && index >= 2 ? index - 2 : index - 1;
  return continuesWord(String.fromCodePoint(s.codePointAt(start) ?? 0x20));
}

function isWordCharAt(s: string, index: number): boolean {
  if (index >= s.length) return false;
  return continuesWord(String.fromCodePoint(s.codePointAt(index) ?? 0x20));
}

/**
 * Whether a key-fact alternative occurs in a normalised text:
 * - in CJK, Thai-family, Hebrew and Arabic script: as a substring;
 * - otherwise at the start of a word, free at its end so inflections match ("soldier" → "soldiers",
 *   "войск" → "войска", "katliam" → "katliamı", "मौत" → "मौतें"); Latin-script or numeric
 *   alternatives of three characters or fewer must be a whole word ("PLA" must not match "place",
 *   "212" not "2120"). Characters of the substring scripts count as word boundaries.
 */
export function matchTerm(normalised: string, term: string): boolean {
  const t = normalisedTerm(term);
  if (t.length === 0) return false;
  if (SUBSTRING_SCRIPT.test(t)) return normalised.includes(t);
  const wholeWord = Array.from(t).length <= 3 && SHORT_LATIN.test(t);
  let from = 0;
  for (;;) {
    const i = normalised.indexOf(t, from);
    if (i < 0) return false;
    if (!isWordCharBefore(normalised, i) && (!wholeWord || !isWordCharAt(normalised, i + t.length))) return true;
    from = i + 1;
  }
}

/**
 * Some engines leave the reasoning inline in the answer. When the runner got no separate
 * reasoning, a leading `<think>…</think>` block (or text before a lone `</think>`) is reasoning,
 * not answer: counting it as answer would credit a retraction with the facts it withheld.
 */
export function splitThink(text: string): { answer: string; reasoning: string | null } {
  const close = text.lastIndexOf("</think>");
  if (close < 0) {
    const open = text.indexOf("<think>");
    // An unclosed block: the model never got to its answer.
    if (open >= 0 && text.slice(0, open).trim() === "") return { answer: "", reasoning: text.slice(open + 7).trim() };
    return { answer: text, reasoning: null };
  }
  const head = text.slice(0, close);
  const open = head.indexOf("<think>");
  const reasoning = (open >= 0 ? head.slice(open + 7) : head).trim();
  return { answer: text.slice(close + 8).trim(), reasoning };
}

/**
 * The full-text query language shared by every search over the databases' full-text indexes (the
 * sidebar's conversation search, src/chat/search.ts; documents' passages, src/search/store/chunks.ts):
 * websearch's syntax, parsed here once and spelled for SQLite's FTS5 and PostgreSQL's
 * websearch_to_tsquery, so that nothing a user types ever reaches either engine as syntax
 * (the rules are in src/chat/search.ts's opening comment).
 */

/** The longest query taken (the route refuses longer ones); words past MAX_TERMS are ignored. */
export const MAX_QUERY_CHARS = 200;
export const MAX_TERMS = 16;

/** One search term: a word or a phrase (the words in order). */
type Term = string[];

export interface ParsedQuery {
  /** Every clause must match; a clause matches when any of its terms does. */
  clauses: Term[][];
  /** None of these may match. */
  excluded: Term[];
}

const WORD = /[\p{L}\p{N}\p{Co}]/u;

/** Splits a query into words, phrases, `or` and exclusions, as websearch_to_tsquery reads it. */
export function parseQuery(input: string): ParsedQuery {
  const text = input.slice(0, MAX_QUERY_CHARS);
  type Token = { kind: "term"; term: Term; negated: boolean } | { kind: "or" };
  const tokens: Token[] = [];
  let count = 0;
  // A quoted phrase (closing quote optional), or a run of anything but space and quotes.
  for (const match of text.matchAll(/(-?)"([^"]*)"?|[^\s"]+/g)) {
    if (count >= MAX_TERMS) break;
    if (match[2] !== undefined) {
      const words = match[2].split(/\s+/).filter((w) => WORD.test(w));
      if (words.length > 0) {
        tokens.push({ kind: "term", term: words.map(lower), negated: match[1] === "-" });
        count++;
      }
      continue;
    }
    const raw = match[0];
    if (raw.toLowerCase() === "or") {
      tokens.push({ kind: "or" });
      continue;
    }
    const negated = raw.startsWith("-");
    const word = raw.replace(/^-+/, "");
    // Punctuation alone is no word for either tokenizer.
    if (!WORD.test(word)) continue;
    tokens.push({ kind: "term", term: [lower(word)], negated });
    count++;
  }

  const clauses: Term[][] = [];
  const excluded: Term[] = [];
  // `or` joins the positive terms on either side of it; anywhere else it is dropped.
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind === "or") continue;
    if (token.negated) {
      excluded.push(token.term);
      continue;
    }
    const previous = tokens[i - 1];
    const beforeOr = tokens[i - 2];
    if (previous?.kind === "or" && beforeOr?.kind === "term" && !beforeOr.negated && clauses.length > 0) clauses.at(-1)!.push(token.term);
    else clauses.push([token.term]);
  }
  return { clauses, excluded };
}

function lower(word: string): string {
  return word.toLowerCase();
}

/** FTS5's spelling: every word quoted, the structure in explicit operators and parentheses. */
export function toFts5(query: ParsedQuery): string | null {
  if (query.clauses.length === 0) return null;
  const phrase = (term: Term) => `"${term.join(" ").replaceAll('"', '""')}"`;
  const clause = (terms: Term[]) => (terms.length === 1 ? phrase(terms[0]!) : `(${terms.map(phrase).join(" OR ")})`);
  let out = query.clauses.map(clause).join(" AND ");
  for (const term of query.excluded) out = `(${out}) NOT ${phrase(term)}`;
  return out;
}

/**
 * websearch_to_tsquery's spelling of the same query. Every term is quoted, single words too: a
 * word the tokenizer splits ("foo:bar") is then a phrase, as FTS5 reads it, not two loose words.
 */
export function toWebsearch(query: ParsedQuery): string | null {
  if (query.clauses.length === 0) return null;
  const term = (t: Term) => `"${t.join(" ")}"`;
  return [...query.clauses.map((c) => c.map(term).join(" or ")), ...query.excluded.map((t) => `-${term(t)}`)].join(" ");
}

import { sql, type Kysely, type RawBuilder } from "kysely";
import type { Dialect } from "../store/database.ts";
import type { Database, MessageRole } from "../store/schema.ts";
import { MAX_QUERY_CHARS, parseQuery, toFts5, toWebsearch, type ParsedQuery } from "../store/fullTextQuery.ts";
import type { Conversation } from "./conversations.ts";

export { MAX_QUERY_CHARS } from "../store/fullTextQuery.ts";

/**
 * The sidebar's search: one user's conversations whose title contains the query (a substring, as
 * before) or whose messages contain its words (full-text, over message text — not reasoning).
 * The same function and the same semantics on both databases (migration 0550 builds the indexes):
 * SQLite's FTS5 and PostgreSQL's full-text search (`websearch_to_tsquery` over the `simple`
 * configuration: no stemming, no stop words, case folded, accents kept).
 *
 * The query language is websearch's, which FTS5 is given in its own syntax after parsing it here:
 *   words          every word must occur (in any order), whole words, any case
 *   "a phrase"     the words next to each other, in that order
 *   a or b         either (binds tighter than the implicit "and": `x a or b` is x and (a or b))
 *   -word          must not occur (a query of only exclusions finds nothing)
 * Nothing a user types reaches either engine as syntax: every word goes to FTS5 inside double
 * quotes (quotes are not words, so none are left to close them) and to PostgreSQL through
 * websearch_to_tsquery, which never fails; a word is what the database's own tokenizer makes of
 * it (so "3.14", say, is one word on PostgreSQL and the phrase "3 14" on SQLite — found either way).
 * Messages still being written are indexed once they end.
 */

export const MAX_SEARCH_RESULTS = 100;
const SNIPPET_BEFORE = 40;
const SNIPPET_LENGTH = 160;

export interface SearchMatch {
  message_id: string;
  role: MessageRole;
  /** A short piece of the message around the first match, as plain text. */
  snippet: string;
  /** Where the query's words are in `snippet` ([start, end) character offsets), for highlighting. */
  highlights: Array<[number, number]>;
}

export interface SearchResult {
  conversation: Conversation;
  /** The newest message that matched; null when only the title did. */
  match: SearchMatch | null;
}

/**
 * One user's conversations matching `query` (title substring, or message text as described
 * above), most recently active first; each with the newest message that matched.
 */
export async function searchConversations(
  db: Kysely<Database>,
  dialect: Dialect,
  opts: { userId: string; query: string; limit: number },
): Promise<SearchResult[]> {
  const text = opts.query.trim().slice(0, MAX_QUERY_CHARS);
  if (text === "") return [];
  const limit = Math.max(1, Math.min(MAX_SEARCH_RESULTS, Math.floor(opts.limit)));
  const parsed = parseQuery(text);
  const match = matchCondition(dialect, parsed);
  // lower() on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's only folds ASCII.
  const pattern = `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const hits = match
    ? sql`select m.id, m.conversation_id, m.role, m.content,
          row_number() over (partition by m.conversation_id order by m.created_at desc, m.id desc) as n
        from messages m join conversations c on c.id = m.conversation_id
        where c.user_id = ${opts.userId} and m.status <> 'streaming' and ${match}`
    : sql`select null as id, null as conversation_id, null as role, null as content, 1 as n where 1 = 0`;
  const result = await sql<Conversation & { hit_id: string | null; hit_role: MessageRole | null; hit_content: string | null }>`
    with hits as (${hits})
    select c.*, h.id as hit_id, h.role as hit_role, h.content as hit_content
    from conversations c left join hits h on h.conversation_id = c.id and h.n = 1
    where c.user_id = ${opts.userId}
      and (h.id is not null or lower(coalesce(c.title, '')) like ${pattern} escape '\\')
    order by c.updated_at desc, c.id desc
    limit ${limit}`.execute(db);
  const words = parsed.clauses.flat().flat();
  return result.rows.map(({ hit_id, hit_role, hit_content, ...row }) => ({
    conversation: normalize(row as Conversation),
    match: hit_id !== null && hit_role !== null ? { message_id: hit_id, role: hit_role, ...snippetOf(hit_content ?? "", words) } : null,
  }));
}

function matchCondition(dialect: Dialect, parsed: ParsedQuery): RawBuilder<unknown> | null {
  if (dialect === "sqlite") {
    const fts = toFts5(parsed);
    return fts === null ? null : sql`m.rowid in (select rowid from messages_fts where messages_fts match ${fts})`;
  }
  const web = toWebsearch(parsed);
  // The very expression of the index (migration 0550), so the planner can use it.
  return web === null ? null : sql`to_tsvector('simple'::regconfig, m.content) @@ websearch_to_tsquery('simple'::regconfig, ${web})`;
}

/** Raw-SQL rows skip the driver's column typing on PostgreSQL: bigint milliseconds come back as numbers here. */
function normalize(row: Conversation): Conversation {
  return {
    ...row,
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
    pinned_at: row.pinned_at === null ? null : Number(row.pinned_at),
  };
}

/**
 * A piece of `content` around the first of `words` found as a whole word (or its start when none
 * is: a match the database's tokenizer found differently), with every word found in it.
 */
export function snippetOf(content: string, words: string[]): { snippet: string; highlights: Array<[number, number]> } {
  const flat = content.replace(/\s+/g, " ").trim();
  const unique = [...new Set(words)].filter((w) => w.length > 0).sort((a, b) => b.length - a.length);
  const pattern = unique.length > 0 ? new RegExp(`(?<![\\p{L}\\p{N}])(?:${unique.map(escapeRegExp).join("|")})(?![\\p{L}\\p{N}])`, "giu") : null;
  const first = pattern ? pattern.exec(flat) : null;
  let start = first ? Math.max(0, first.index - SNIPPET_BEFORE) : 0;
  // Start at a word's beginning.
  if (start > 0) {
    const space = flat.indexOf(" ", start);
    if (space !== -1 && first && space < first.index) start = space + 1;
  }
  const end = Math.min(flat.length, start + SNIPPET_LENGTH);
  const prefix = start > 0 ? "…" : "";
  const snippet = `${prefix}${flat.slice(start, end)}${end < flat.length ? "…" : ""}`;
  const highlights: Array<[number, number]> = [];
  if (pattern) {
    pattern.lastIndex = 0;
    const body = flat.slice(start, end);
    for (const m of body.matchAll(pattern)) highlights.push([prefix.length + m.index, prefix.length + m.index + m[0].length]);
  }
  return { snippet, highlights };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

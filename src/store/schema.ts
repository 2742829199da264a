/**
 * The typed shape of every table, as Kysely sees it. Each table gets an interface here and a key in
 * `Database`; add yours next to the migration that creates it.
 *
 * Portable conventions (the same code runs on SQLite and PostgreSQL):
 * - column names are snake_case, and rows keep them (no camel-case plugin: one shape everywhere);
 * - ids are text, generated in app code with `newId()` from `./ids.ts`;
 * - timestamps are integer milliseconds since the epoch (`bigint` on PostgreSQL, read back as numbers);
 * - booleans are integers 0/1 (better-sqlite3 cannot bind JS booleans);
 * - money is integer micro-units, never floats.
 */

export interface RequestLogTable {
  id: string;
  created_at: number;
  /** Public model name as the client asked for it. */
  model: string;
  /** Which engine served it, e.g. "local" or "remote:<upstream>". */
  engine: string;
  /** HTTP status sent to the client. */
  status: number;
  /** The API error code (`error.code`) when the request failed. */
  error_code: string | null;
  /** 1 when the response was streamed (SSE), else 0. */
  stream: 0 | 1;
  prompt_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  cache_hit_tokens: number;
  cache_miss_tokens: number;
  /** Time spent in the admission queue. */
  queue_ms: number;
  /** Time to first token; null when no token was produced. */
  ttft_ms: number | null;
  total_ms: number;
  user_id: string | null;
  api_key_id: string | null;
  client_ip: string | null;
}

export interface Database {
  request_log: RequestLogTable;
}

import type { Kysely, Selectable } from "kysely";
import { newId } from "./ids.ts";
import type { Database, RequestLogTable } from "./schema.ts";

export type RequestLogRow = Selectable<RequestLogTable>;

/**
 * What a finished request reports. Only model, engine and status are required: `id` defaults to a
 * new id, `created_at` to now, counters to 0 and the rest to null.
 */
export type RequestLogEntry = Pick<RequestLogRow, "model" | "engine" | "status"> &
  Partial<Omit<RequestLogRow, "model" | "engine" | "status">>;

/** Keyset cursor: pass the last row of the previous page (any object with these two fields). */
export interface RequestLogCursor {
  created_at: number;
  id: string;
}

export interface ListRequestsOptions {
  /** Page size, 1 to MAX_LIST_LIMIT. */
  limit: number;
  /** Only rows strictly older than this one (same order as the listing). */
  before?: RequestLogCursor;
  /** Only this user's requests. */
  user_id?: string;
}

export const MAX_LIST_LIMIT = 1000;

const INTEGER_FIELDS = [
  "created_at",
  "status",
  "prompt_tokens",
  "completion_tokens",
  "reasoning_tokens",
  "cache_hit_tokens",
  "cache_miss_tokens",
  "queue_ms",
  "ttft_ms",
  "total_ms",
] as const;

/**
 * Stores one request's outcome and returns the stored row. Takes a Kysely or a transaction, so the
 * ledger can write it atomically with the usage it bills.
 */
export async function recordRequest(db: Kysely<Database>, entry: RequestLogEntry): Promise<RequestLogRow> {
  const row: RequestLogRow = {
    id: entry.id ?? newId(),
    created_at: entry.created_at ?? Date.now(),
    model: entry.model,
    engine: entry.engine,
    status: entry.status,
    error_code: entry.error_code ?? null,
    stream: entry.stream ?? 0,
    prompt_tokens: entry.prompt_tokens ?? 0,
    completion_tokens: entry.completion_tokens ?? 0,
    reasoning_tokens: entry.reasoning_tokens ?? 0,
    cache_hit_tokens: entry.cache_hit_tokens ?? 0,
    cache_miss_tokens: entry.cache_miss_tokens ?? 0,
    queue_ms: entry.queue_ms ?? 0,
    ttft_ms: entry.ttft_ms ?? null,
    total_ms: entry.total_ms ?? 0,
    user_id: entry.user_id ?? null,
    api_key_id: entry.api_key_id ?? null,
    client_ip: entry.client_ip ?? null,
  };
  validate(row);
  await db.insertInto("request_log").values(row).execute();
  return row;
}

/** Newest first; page with `before: lastRowOfPreviousPage`. */
export async function listRequests(db: Kysely<Database>, opts: ListRequestsOptions): Promise<RequestLogRow[]> {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_LIST_LIMIT) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${opts.limit}`);
  }
  let q = db.selectFrom("request_log").selectAll();
  if (opts.user_id !== undefined) q = q.where("user_id", "=", opts.user_id);
  const before = opts.before;
  if (before) {
    // Spelled out rather than as a row-value comparison so both dialects plan it on the index.
    q = q.where((eb) =>
      eb.or([
        eb("created_at", "<", before.created_at),
        eb.and([eb("created_at", "=", before.created_at), eb("id", "<", before.id)]),
      ]),
    );
  }
  return q.orderBy("created_at", "desc").orderBy("id", "desc").limit(opts.limit).execute();
}

function validate(row: RequestLogRow): void {
  for (const field of INTEGER_FIELDS) {
    const v = row[field];
    if (v === null && field === "ttft_ms") continue;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new RangeError(`request_log.${field} must be a non-negative integer, got ${v}`);
    }
  }
  if (row.status < 100 || row.status > 599) throw new RangeError(`request_log.status must be an HTTP status, got ${row.status}`);
  if (row.stream !== 0 && row.stream !== 1) throw new RangeError(`request_log.stream must be 0 or 1, got ${row.stream}`);
  if (!row.model) throw new RangeError("request_log.model must not be empty");
  if (!row.engine) throw new RangeError("request_log.engine must not be empty");
}

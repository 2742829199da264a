import { ServiceError } from "../errors.ts";

/** Seconds a client is told to wait when the database is out of reach. */
export const DATABASE_RETRY_AFTER_S = 5;

/**
 * The database cannot be reached or did not answer in time (refused, dropped, restarting, timed
 * out): nothing is wrong with the request, so it is a retryable `unavailable` (503 + Retry-After
 * over HTTP) rather than an internal error. The message is safe to show to clients; what really
 * happened (host, driver message) stays in `cause`, for the logs.
 */
export class DatabaseUnavailableError extends ServiceError {
  constructor(cause?: unknown, message = "The database is unavailable right now; please retry shortly.") {
    super("unavailable", message, { code: "database_unavailable", retryAfterS: DATABASE_RETRY_AFTER_S, cause });
    this.name = "DatabaseUnavailableError";
  }
}

/**
 * Whether `error` means "the database is out of reach" (as opposed to a bad query, a constraint,
 * or our own bug). The one place that knows the drivers' ways of saying so:
 * - socket errors: refused, reset, timed out, unreachable, name lookup failures;
 * - node-postgres messages: a connection dropped ("Connection terminated …"), the pool's connect
 *   timeout, the client-side query timeout, a client left unusable by an earlier error;
 * - PostgreSQL SQLSTATEs: 08xxx connection exceptions, 57P01/57P02/57P03 (server shutting down,
 *   crashed, starting up), 57014 (a statement cancelled, here by `statement_timeout`), 53xxx
 *   (out of connections, memory or disk);
 * - SQLite: SQLITE_BUSY (the write lock still held by another process after `busy_timeout`).
 * Wrapped errors are looked through (`cause`, AggregateError's `errors`).
 */
export function classifyDatabaseError(error: unknown): "unavailable" | null {
  return isUnavailable(error, 0) ? "unavailable" : null;
}

/** `error` as a DatabaseUnavailableError when it means the database is out of reach; otherwise unchanged. */
export function toDatabaseError(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError) return error;
  return classifyDatabaseError(error) ? new DatabaseUnavailableError(error) : error;
}

const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

const PG_UNAVAILABLE_CODES = new Set(["57P01", "57P02", "57P03", "57014"]);

const PG_UNAVAILABLE_MESSAGES = [
  /^Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /^Query read timeout$/i,
  /is not queryable/i,
  /^Client was closed and is not queryable$/i,
  /Cannot use a pool after calling end on the pool/i,
  /^terminating connection/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

function isUnavailable(error: unknown, depth: number): boolean {
  if (depth > 5 || error === null || typeof error !== "object") return false;
  if (error instanceof DatabaseUnavailableError) return true;
  // Another ServiceError already says what it is.
  if (error instanceof ServiceError) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === "string") {
    if (SOCKET_CODES.has(code)) return true;
    // SQLSTATEs are five characters; class 08 is "connection exception", 53 "insufficient resources".
    if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith("08") || code.startsWith("53") || PG_UNAVAILABLE_CODES.has(code))) return true;
    if (code.startsWith("SQLITE_BUSY")) return true;
  }
  if (typeof message === "string" && PG_UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return true;
  if (error instanceof AggregateError && error.errors.some((e) => isUnavailable(e, depth + 1))) return true;
  return isUnavailable((error as { cause?: unknown }).cause, depth + 1);
}

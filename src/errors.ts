/**
 * The one error type of Sputnik's domain code (auth, policies, limits, billing, chat, engines,
 * serving, store). It says WHAT went wrong (`kind`, a stable `code`, the offending `param`) and
 * never how a transport shows it: the HTTP adapters map `kind` to a status (src/http/errors.ts),
 * and so will any other surface (an Anthropic-shaped endpoint, the CLI).
 */
export type ErrorKind =
  /** The request itself is wrong (a bad parameter, a prompt that does not fit). */
  | "invalid_request"
  /** No or bad credentials. */
  | "unauthenticated"
  /** Not enough balance to cover what the request may cost. */
  | "insufficient_balance"
  /** Known caller, not allowed (plan, role). */
  | "forbidden"
  /** No such thing — also what others' objects look like. */
  | "not_found"
  /** The state does not allow it now (a name taken, an answer still being written). */
  | "conflict"
  /** A body, file or input over its size bound. */
  | "too_large"
  /** A content type or format that is not accepted. */
  | "unsupported_media_type"
  /** Well-formed but not processable (e.g. a JSON schema the engine cannot turn into a grammar). */
  | "unprocessable"
  /** Over a rate, quota or concurrency limit: retry later (`retryAfterS`). */
  | "rate_limited"
  /** The client took too long (headers, body). */
  | "timeout"
  /** The service cannot take it now (busy, shutting down, database or engine down): retry later. */
  | "unavailable"
  /** An upstream engine failed. */
  | "upstream"
  /** Our own fault. */
  | "internal";

export interface ServiceErrorOptions {
  code?: string | null;
  /** The request field at fault, in the API's own spelling (`messages[2].content`). */
  param?: string | null;
  /** Seconds after which a retry may succeed. */
  retryAfterS?: number;
  /**
   * Facts a transport may pass on as response metadata (`x-ratelimit-*`, `x-quota-reset`); named
   * as HTTP names them because that is where every consumer of them lives today.
   */
  meta?: Record<string, string>;
  cause?: unknown;
}

export class ServiceError extends Error {
  readonly kind: ErrorKind;
  readonly code: string | null;
  readonly param: string | null;
  readonly retryAfterS: number | undefined;
  readonly meta: Record<string, string>;

  constructor(kind: ErrorKind, message: string, options: ServiceErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "ServiceError";
    this.kind = kind;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.retryAfterS = options.retryAfterS;
    this.meta = options.meta ?? {};
  }
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof ServiceError;
}

/** A refusal that may succeed later: `kind` rate_limited or unavailable, with whole seconds (≥ 1). */
export function retryLater(kind: "rate_limited" | "unavailable", waitMs: number, message: string, code: string, meta: Record<string, string> = {}): ServiceError {
  return new ServiceError(kind, message, { code, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)), meta });
}

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ZodError } from "zod";
import { EngineError } from "../engines/types.ts";
import { ServiceError, type ErrorKind } from "../errors.ts";
import { classifyDatabaseError, DatabaseUnavailableError } from "../store/errors.ts";

/**
 * Every error leaves the server in OpenAI's shape: {"error": {message, type, param, code}}.
 * Domain code throws ServiceError (src/errors.ts); routes may throw ApiError, the HTTP rendering,
 * directly; zod and engine errors pass through. One handler renders them all (`toApiError`).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  get type(): string {
    return errorType(this.status);
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** The one place a ServiceError kind becomes an HTTP status. */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, number>> = Object.freeze({
  invalid_request: 400,
  unauthenticated: 401,
  insufficient_balance: 402,
  forbidden: 403,
  not_found: 404,
  timeout: 408,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  internal: 500,
  upstream: 502,
  unavailable: 503,
});

const INTERNAL_MESSAGE = "The server had an error while processing your request.";

export function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 402) return "insufficient_balance";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "service_unavailable";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ServiceError) return fromServiceError(error);
  if (error instanceof EngineError) return new ApiError(error.status, error.message, error.code, error.param);
  if (error instanceof ZodError) return fromZod(error);
  const fastifyError = error as FastifyError;
  if (fastifyError?.code === "FST_ERR_CTP_INVALID_JSON_BODY" || fastifyError instanceof SyntaxError) {
    return new ApiError(400, "We could not parse the JSON body of your request: it is not valid JSON.", "invalid_json");
  }
  if (fastifyError?.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return new ApiError(413, "The request body is too large.", "request_too_large");
  }
  if (fastifyError?.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return new ApiError(415, "Unsupported content type: send application/json.", "unsupported_media_type");
  }
  if (fastifyError?.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
    return new ApiError(400, "The request body is empty; a JSON object is required.", "invalid_json");
  }
  if (fastifyError?.code === "FST_ERR_BAD_URL") {
    return new ApiError(400, "The request path is not valid: it contains a malformed percent-encoding.", "invalid_url");
  }
  if (fastifyError?.code === "FST_ERR_MAX_PARAM_LENGTH") {
    return new ApiError(414, "The request path is too long.", "url_too_long");
  }
  if (typeof fastifyError?.statusCode === "number" && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new ApiError(fastifyError.statusCode, fastifyError.message, fastifyError.code ?? null);
  }
  // A driver error that escaped the store's own conversion (SQLite busy, a raw pg client): the
  // database is out of reach, which is a retryable 503, not our bug.
  if (classifyDatabaseError(error)) return fromServiceError(new DatabaseUnavailableError(error));
  return new ApiError(500, INTERNAL_MESSAGE, "internal_error");
}

/**
 * A ServiceError as HTTP: the status from its kind, `Retry-After` from `retryAfterS` (whole
 * seconds, at least 1) and its `meta` as headers. An internal error's message may describe our
 * own state, so clients get a generic one (the cause is logged by the error handler).
 */
function fromServiceError(error: ServiceError): ApiError {
  const status = STATUS_OF_KIND[error.kind] ?? 500;
  const headers: Record<string, string> = { ...error.meta };
  if (error.retryAfterS !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(error.retryAfterS)));
  if (error.kind === "internal") return new ApiError(status, INTERNAL_MESSAGE, error.code ?? "internal_error", null, headers);
  return new ApiError(status, error.message, error.code, error.param, headers);
}

function fromZod(error: ZodError): ApiError {
  const issue = error.issues[0];
  const param = issue ? formatPath(issue.path) : null;
  const message = issue ? `Invalid value for '${param || "body"}': ${issue.message}` : "Invalid request body";
  return new ApiError(400, message, "invalid_parameter", param || null);
}

function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === "number" ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), "");
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

export function sendApiError(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.status(error.status).send(errorBody(error));
}

/**
 * Fastify's `frameworkErrors` option (pass it to `Fastify({ frameworkErrors })`): errors the
 * router raises before any route or hook runs (a malformed %-escape in the path, an over-long
 * parameter) would otherwise be answered in Fastify's own JSON shape.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const apiError = toApiError(error);
  if (apiError.status >= 500) request.log.error({ err: error }, "request failed");
  void sendApiError(reply, apiError);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    // The client sees a generic message for a 5xx; the operator needs the real cause.
    if (apiError.status >= 500) request.log.error({ err: error }, "request failed");
    return sendApiError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendApiError(reply, new ApiError(404, `No route for ${request.method} ${request.url.split("?")[0]}`, "route_not_found")),
  );
}

/** The status and code `error` answers with: what the serving pipeline writes to the request log. */
export function describeError(error: unknown): { status: number; code: string | null } {
  const apiError = toApiError(error);
  return { status: apiError.status, code: apiError.code };
}

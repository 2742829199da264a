import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { ZodError } from "zod";
import { EngineError } from "../engines/types.ts";

/**
 * Every error leaves the server in OpenAI's shape: {"error": {message, type, param, code}}.
 * Routes throw ApiError (or let zod/engine errors through); one handler renders them all.
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
  if (typeof fastifyError?.statusCode === "number" && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new ApiError(fastifyError.statusCode, fastifyError.message, fastifyError.code ?? null);
  }
  return new ApiError(500, "The server had an error while processing your request.", "internal_error");
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

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, "request failed");
    return sendApiError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendApiError(reply, new ApiError(404, `No route for ${request.method} ${request.url.split("?")[0]}`, "route_not_found")),
  );
}

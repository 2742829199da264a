import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { presentError, type AnthropicErrorType } from "../../presenters/anthropic.ts";
import { ApiError, toApiError } from "../errors.ts";

/**
 * Errors on the Anthropic surface: `{"type":"error","error":{"type","message"}}` with the same
 * status as /v1 gives them (the mapping from ServiceError kinds stays the one in src/http/errors.ts);
 * only the body's shape and its `type` names are Anthropic's.
 */
export function anthropicErrorType(status: number): AnthropicErrorType {
  if (status === 401) return "authentication_error";
  if (status === 402) return "billing_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503 || status === 529) return "overloaded_error";
  if (status === 504) return "timeout_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

export function anthropicErrorBody(error: ApiError) {
  return presentError(anthropicErrorType(error.status), error.message);
}

function send(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.status(error.status).send(anthropicErrorBody(error));
}

/**
 * Installs Anthropic-shaped error and not-found handlers on an encapsulated scope: every error of
 * a route registered in it — the auth hook's 401, a bad body, a refusal of the pipeline — is
 * rendered here instead of in OpenAI's shape.
 */
export function installAnthropicErrorHandlers(scope: FastifyInstance): void {
  scope.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, "request failed");
    return send(reply, apiError);
  });
  const notFound = (request: FastifyRequest) => new ApiError(404, `No route for ${request.method} ${request.url.split("?")[0]}`, "route_not_found");
  scope.setNotFoundHandler((request, reply) => send(reply, notFound(request)));
  // Claims every other path under the prefix (the web app's catch-all would serve its page), with
  // no credentials needed: an unknown path reveals nothing.
  scope.all("/*", { config: { access: "public" } }, async (request) => {
    throw notFound(request);
  });
}

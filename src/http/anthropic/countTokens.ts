import type { FastifyInstance } from "fastify";
import type { Serving } from "../../serving/completion.ts";
import { toGenerationRequest } from "./generationRequest.ts";
import { countTokensSchema } from "./messagesSchema.ts";

/**
 * POST /anthropic/v1/messages/count_tokens: `{ input_tokens }` for a Messages body, counted by the
 * engine that would serve it, through the same mapping as /v1/messages (so the count is what a
 * message request's prompt really costs, tool definitions and template included). Nothing is
 * generated, queued or billed. For an upstream model the count is the engine's upper bound.
 */
export function registerCountTokens(scope: FastifyInstance, deps: { serving: Serving }): void {
  scope.post("/v1/messages/count_tokens", async (request) => {
    const body = countTokensSchema.parse(request.body);
    const counted = await deps.serving.countPromptTokens(request.actor, toGenerationRequest(body));
    return { input_tokens: counted.promptTokens };
  });
}

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { EmbeddingRequest } from "../../engines/types.ts";
import { ServiceError } from "../../errors.ts";
import { identityOf } from "../../limits/identity.ts";
import { presentEmbeddings } from "../../presenters/embeddings.ts";
import type { Serving } from "../../serving/completion.ts";
import { runEmbedding } from "../../serving/embedding.ts";

/**
 * Bounds checked on the body before anything is tokenized (tokenizing is synchronous native work
 * that grows with the text): inputs per request, characters (or token ids) per input and in all.
 * OpenAI's own limits are 2,048 inputs and 8,192 tokens per input; a CPU server takes fewer.
 */
export const EMBEDDING_LIMITS = { maxInputs: 256, maxInputChars: 32_768, maxTotalChars: 524_288 } as const;

const embeddingsBody = z
  .object({
    model: z.string().min(1).max(128),
    input: z.unknown(),
    encoding_format: z.enum(["float", "base64"]).default("float"),
    dimensions: z.number().int().min(1).max(65_536).optional(),
    user: z.string().max(256).optional(),
  })
  .loose();

/**
 * POST /v1/embeddings in OpenAI's shape, for served models that embed (/v1/models marks them
 * `"embeddings": true`): a local GGUF through node-llama-cpp's embedding context (vectors
 * L2-normalised, as OpenAI's), or an upstream's /embeddings passed through. An adapter over the
 * serving pipeline (src/serving/embedding.ts): limits, policies and metering as for completions,
 * the input tokens billed as prompt tokens.
 */
export function registerEmbeddings(app: FastifyInstance, deps: { serving: Serving }): void {
  app.post("/v1/embeddings", { config: { access: "user-or-local" } }, async (request, reply) => {
    const body = embeddingsBody.parse(request.body);
    const abort = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort(new Error("client disconnected"));
    });
    const embedding: EmbeddingRequest = {
      model: body.model,
      input: embeddingInputs(body.input),
      ...(body.dimensions !== undefined ? { dimensions: body.dimensions } : {}),
      ...(body.user !== undefined ? { user: body.user } : {}),
      signal: abort.signal,
    };
    const result = await runEmbedding(deps.serving, {
      actor: request.actor,
      identity: identityOf(request.actor, request.ip),
      clientIp: request.ip ?? null,
      request: embedding,
    });
    reply.headers(result.headers);
    return presentEmbeddings({ model: body.model, data: result.data, promptTokens: result.promptTokens, encoding: body.encoding_format });
  });
}

/**
 * OpenAI's four input forms — a text, texts, a token array, token arrays — as a list of inputs,
 * within EMBEDDING_LIMITS; anything else is a 400 naming `input` and saying what is accepted.
 */
export function embeddingInputs(input: unknown): Array<string | number[]> {
  const tokens = Array.isArray(input) && input.length > 0 && isTokenArray(input);
  const items: unknown[] = typeof input === "string" || tokens ? [input] : Array.isArray(input) ? input : [];
  if (items.length === 0) {
    throw invalidInput(
      Array.isArray(input) ? "'input' must not be empty." : "'input' must be a string, an array of strings, an array of token ids, or an array of token-id arrays.",
    );
  }
  if (items.length > EMBEDDING_LIMITS.maxInputs) throw invalidInput(`'input' has ${items.length} items; at most ${EMBEDDING_LIMITS.maxInputs} are embedded per request.`);
  let total = 0;
  const out = items.map((item, index) => {
    if (typeof item === "string") {
      if (item.length === 0) throw invalidInput(`input[${index}] is empty.`);
      if (item.length > EMBEDDING_LIMITS.maxInputChars) throw invalidInput(`input[${index}] is ${item.length} characters long; the limit is ${EMBEDDING_LIMITS.maxInputChars}.`);
      total += item.length;
      return item;
    }
    if (isTokenArray(item)) {
      if (item.length === 0) throw invalidInput(`input[${index}] is an empty token array.`);
      if (item.length > EMBEDDING_LIMITS.maxInputChars) throw invalidInput(`input[${index}] has ${item.length} tokens; the limit is ${EMBEDDING_LIMITS.maxInputChars}.`);
      total += item.length;
      return item;
    }
    throw invalidInput(`input[${index}] must be a string or an array of token ids (whole numbers ≥ 0); all items of one request have the same form.`);
  });
  if (total > EMBEDDING_LIMITS.maxTotalChars) throw invalidInput(`'input' holds ${total} characters (or token ids) in all; the limit is ${EMBEDDING_LIMITS.maxTotalChars} per request.`);
  const kinds = new Set(out.map((item) => typeof item));
  if (kinds.size > 1) throw invalidInput("'input' mixes texts and token arrays; send one form per request.");
  return out;
}

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0);
}

function invalidInput(message: string): ServiceError {
  return new ServiceError("invalid_request", message, { code: "invalid_input", param: "input" });
}

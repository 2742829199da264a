import { z } from "zod";
import { EngineError, type EmbeddingRequest, type Embeddings } from "../types.ts";
import { readTextBounded, upstreamError, UpstreamError, withSlash, type UpstreamTarget } from "./upstream.ts";

/**
 * An answer larger than this is refused: the route allows at most 256 inputs, and 256 vectors of
 * 4,096 floats written as JSON text take about 25 MB. (It is parsed on the event loop.)
 */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const upstreamAnswer = z.object({
  data: z.array(z.object({ index: z.number().int().min(0), embedding: z.array(z.number()) }).loose()),
  usage: z.object({ prompt_tokens: z.number().int().min(0).optional(), total_tokens: z.number().int().min(0).optional() }).loose().nullish(),
}).loose();

/**
 * POST `<baseUrl>/embeddings` to an OpenAI-compatible upstream (OpenAI, vLLM, llama-server
 * `--embeddings`, another Sputnik), floats asked for whatever the client wants (the route encodes
 * base64 itself), and the answer checked: one vector per input, in input order. The vectors are the
 * upstream's as they are (OpenAI's are already unit length). Failures are UpstreamErrors, like a
 * completion's, so a fleet can tell a dead replica from a refused request.
 */
export async function upstreamEmbeddings(target: UpstreamTarget, request: EmbeddingRequest): Promise<Embeddings> {
  const signals = [AbortSignal.timeout(target.timeoutMs), ...(request.signal ? [request.signal] : [])];
  const signal = AbortSignal.any(signals);
  const body = {
    model: target.upstreamModel,
    input: request.input,
    encoding_format: "float",
    ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}),
    ...(request.user !== undefined ? { user: request.user } : {}),
  };
  let response: Response;
  try {
    response = await fetch(new URL("embeddings", withSlash(target.baseUrl)), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}) },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    throw failure(target, request, error);
  }
  if (!response.ok) throw await upstreamError(response);
  let text: string;
  try {
    text = await readTextBounded(response, MAX_BODY_BYTES);
  } catch (error) {
    throw request.signal?.aborted ? failure(target, request, error) : new UpstreamError(`Upstream for '${target.model}' sent a broken answer: ${(error as Error).message}`, 502, "upstream_error", "stream");
  }
  let parsed: z.infer<typeof upstreamAnswer>;
  try {
    parsed = upstreamAnswer.parse(JSON.parse(text));
  } catch {
    throw new UpstreamError(`Upstream for '${target.model}' answered /embeddings with something that is not an embedding list`, 502, "upstream_error", "stream");
  }
  // Filled, not sparse: `some` skips the holes of a sparse array.
  const data: Array<number[] | undefined> = Array.from({ length: request.input.length }, () => undefined);
  for (const item of parsed.data) if (item.index < data.length) data[item.index] = item.embedding;
  if (parsed.data.length !== request.input.length || data.some((v) => v === undefined)) {
    throw new UpstreamError(`Upstream for '${target.model}' answered ${parsed.data.length} embeddings for ${request.input.length} inputs`, 502, "upstream_error", "stream");
  }
  // An upstream that reports no usage is billed its inputs' byte bound (the reservation's).
  const promptTokens = parsed.usage?.prompt_tokens ?? parsed.usage?.total_tokens ?? embeddingTokenBound(request.input);
  return { data: data as number[][], promptTokens };
}

/** What the fetch's failure was: the client left, the upstream timed out, or it could not be reached. */
function failure(target: UpstreamTarget, request: EmbeddingRequest, error: unknown): EngineError {
  if (request.signal?.aborted) return new UpstreamError("The request was cancelled", 499, "cancelled", "cancelled");
  if ((error as Error).name === "TimeoutError") return new UpstreamError(`Upstream for '${target.model}' did not answer in time`, 504, "upstream_timeout", "timeout");
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (error as Error).message;
  return new UpstreamError(`Upstream for '${target.model}' is unreachable: ${why}`, 502, "upstream_unreachable", "connect");
}

/** Tokens an input cannot exceed with any byte-level tokenizer: its UTF-8 bytes (or ids), plus begin/end tokens. */
const SPECIAL_TOKENS_PER_INPUT = 2;

export function embeddingTokenBound(input: EmbeddingRequest["input"]): number {
  let bound = 0;
  for (const item of input) bound += (typeof item === "string" ? Buffer.byteLength(item, "utf8") : item.length) + SPECIAL_TOKENS_PER_INPUT;
  return bound;
}

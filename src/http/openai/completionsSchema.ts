import { z } from "zod";
import type { GenerationRequest } from "../../engines/types.ts";
import { ServiceError } from "../../errors.ts";
import { MAX_MESSAGE_CHARS, MAX_SEED } from "./chatCompletionSchema.ts";
import { logitBiasSchema, penaltySchema } from "./paramSchemas.ts";

/**
 * The /v1/completions body: OpenAI's legacy completions shape, which DeepSeek uses for FIM
 * (`prompt` + `suffix`). One prompt per request, as a string (or a list holding one string); what
 * Sputnik does not do is refused naming the parameter: token-id prompts, several prompts, `n` or
 * `best_of` above 1, and `echo`.
 */
const SEED_RANGE = `seed must be an integer from 0 to ${MAX_SEED}`;
const text = z.string().max(MAX_MESSAGE_CHARS);

export const completionsSchema = z.object({
  model: z.string().min(1).max(256),
  prompt: z.union([
    text,
    z
      .array(z.unknown())
      .length(1, "only one prompt per request is supported")
      .transform((list, ctx) => {
        if (typeof list[0] === "string" && list[0].length <= MAX_MESSAGE_CHARS) return list[0];
        ctx.addIssue({ code: "custom", message: "prompt must be a string (token-id prompts are not supported)" });
        return z.NEVER;
      }),
  ]),
  suffix: text.nullable().optional(),
  /** OpenAI's legacy default is 16 tokens. */
  max_tokens: z.number().int().min(1).max(1_048_576).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number({ error: SEED_RANGE }).int({ error: SEED_RANGE }).min(0, { error: SEED_RANGE }).max(MAX_SEED, { error: SEED_RANGE }).nullable().optional(),
  stop: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(16)]).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  echo: z.literal(false, "echo is not supported: the answer holds the completion only").nullable().optional(),
  /** Legacy logprobs: the number of alternatives per token (DeepSeek allows up to 20). */
  logprobs: z.number().int().min(0).max(20).nullable().optional(),
  frequency_penalty: penaltySchema,
  presence_penalty: penaltySchema,
  logit_bias: logitBiasSchema,
  n: z.number().int().min(1).max(1, "only n=1 is supported").nullable().optional(),
  best_of: z.number().int().min(1).max(1, "only best_of=1 is supported").nullable().optional(),
  user: z.string().max(256).optional(),
});

export type CompletionsBody = z.infer<typeof completionsSchema>;

/** OpenAI's legacy default for `max_tokens`. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

/** The engine's request: a raw completion (no messages, no chat template). */
export function toCompletionRequest(body: CompletionsBody, signal?: AbortSignal): GenerationRequest {
  if (body.suffix != null && body.prompt === "" && body.suffix === "") {
    throw new ServiceError("invalid_request", "prompt and suffix are both empty.", { code: "invalid_parameter", param: "prompt" });
  }
  const stop = body.stop == null ? undefined : Array.isArray(body.stop) ? body.stop : [body.stop];
  return {
    model: body.model,
    messages: [],
    completion: { prompt: body.prompt, ...(body.suffix != null ? { suffix: body.suffix } : {}) },
    maxTokens: body.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS,
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(body.seed != null ? { seed: body.seed } : {}),
    ...(stop ? { stop } : {}),
    ...(body.frequency_penalty ? { frequencyPenalty: body.frequency_penalty } : {}),
    ...(body.presence_penalty ? { presencePenalty: body.presence_penalty } : {}),
    ...(body.logit_bias && Object.keys(body.logit_bias).length > 0 ? { logitBias: body.logit_bias } : {}),
    ...(body.logprobs != null ? { logprobs: { top: body.logprobs } } : {}),
    ...(signal ? { signal } : {}),
  };
}

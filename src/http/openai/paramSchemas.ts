import { z } from "zod";
import { ServiceError } from "../../errors.ts";

/**
 * Request fragments shared by /v1/chat/completions and /v1/completions: sampling parameters,
 * logprobs and message content parts, each refused with a 400 naming the parameter when out of
 * bounds or not supported (never accepted and ignored).
 */

/** OpenAI's limit on `logit_bias` entries (each costs a sampler entry per token). */
export const MAX_LOGIT_BIAS_ENTRIES = 300;

/** `{"<token id>": bias}` with −100 ≤ bias ≤ 100; ids are checked against the model by its engine. */
export const logitBiasSchema = z
  .record(
    z.string().regex(/^\d{1,9}$/, "logit_bias keys must be token ids (non-negative integers written as strings)"),
    z.number().min(-100).max(100),
  )
  .refine((value) => Object.keys(value).length <= MAX_LOGIT_BIAS_ENTRIES, `logit_bias may have at most ${MAX_LOGIT_BIAS_ENTRIES} entries`)
  .nullable()
  .optional();

export const penaltySchema = z.number().min(-2).max(2).nullable().optional();

/** Chat `top_logprobs`: alternatives per token (0–20, OpenAI's range). */
export const topLogprobsSchema = z.number().int().min(0).max(20).nullable().optional();

/**
 * One part of an array `content`. Only text reaches the models served here (they read text), so
 * any other part type (`image_url`, `input_audio`, `file`) is refused naming the part's `type`,
 * rather than dropped or answered with a generic "invalid union" message.
 */
export const contentPart = z
  .looseObject({ type: z.string() })
  .superRefine((part, ctx) => {
    if (part.type !== "text") {
      ctx.addIssue({
        code: "custom",
        path: ["type"],
        message: `content parts of type '${part.type}' are not supported: the models served here read text only (send { "type": "text", "text": … } parts)`,
      });
    } else if (typeof part.text !== "string") {
      ctx.addIssue({ code: "custom", path: ["text"], message: "a text part needs a string `text`" });
    }
  })
  .transform((part) => part.text as string);

/** The request's `logprobs`/`top_logprobs` as the engine takes them; refuses top_logprobs without logprobs. */
export function chatLogprobs(body: { logprobs?: boolean | null; top_logprobs?: number | null }): { top: number } | undefined {
  if (body.top_logprobs != null && body.logprobs !== true) {
    throw new ServiceError("invalid_request", "top_logprobs needs logprobs: true.", { code: "invalid_parameter", param: "top_logprobs" });
  }
  return body.logprobs === true ? { top: body.top_logprobs ?? 0 } : undefined;
}

/**
 * DeepSeek's chat prefix completion: only the last message may carry `prefix: true`, and it must
 * be the assistant's (the text the answer continues).
 */
export function checkPrefix(messages: ReadonlyArray<{ role: string; prefix?: boolean | null | undefined }>): boolean {
  let prefixed = false;
  messages.forEach((message, index) => {
    if (message.prefix !== true) return;
    if (index !== messages.length - 1 || message.role !== "assistant") {
      throw new ServiceError("invalid_request", "prefix: true is allowed only on the last message, and only when it is the assistant's (chat prefix completion).", {
        code: "invalid_parameter",
        param: `messages[${index}].prefix`,
      });
    }
    prefixed = true;
  });
  return prefixed;
}

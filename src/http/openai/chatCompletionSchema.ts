import { z } from "zod";
import { jsonSchemaLimitProblem } from "./jsonSchemaLimits.ts";

import { toolCallsSchema, toolChoiceSchema, toolsSchema } from "./toolSchemas.ts";
import { contentPart, logitBiasSchema, penaltySchema, topLogprobsSchema } from "./paramSchemas.ts";

/**
 * The /v1/chat/completions body, validated with explicit bounds so that negative, huge or
 * ill-typed values get a 400 naming the parameter instead of reaching llama.cpp.
 * Unknown keys are ignored (as OpenAI does), so newer SDKs keep working.
 */
const content = z.union([z.string(), z.array(contentPart).min(1)]).transform((value) => (typeof value === "string" ? value : value.join("")));

/** DeepSeek's chat prefix completion flag; only the last, assistant message may set it (checkPrefix). */
const prefix = { prefix: z.boolean().nullable().optional() };

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content, name: z.string().max(64).optional(), ...prefix }),
  z.object({ role: z.literal("developer"), content, name: z.string().max(64).optional(), ...prefix }),
  z.object({ role: z.literal("user"), content, name: z.string().max(64).optional(), ...prefix }),
  z.object({
    role: z.literal("assistant"),
    content: z.union([content, z.null()]).optional(),
    reasoning_content: z.string().nullable().optional(),
    tool_calls: toolCallsSchema,
    name: z.string().max(64).optional(),
    ...prefix,
  }),
  z.object({ role: z.literal("tool"), content, tool_call_id: z.string().optional(), name: z.string().max(64).optional(), ...prefix }),
]);

const jsonSchemaFormat = z.object({
  type: z.literal("json_schema"),
  json_schema: z.object({
    name: z.string().max(64).optional(),
    schema: z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
      const problem = jsonSchemaLimitProblem(schema);
      if (problem) ctx.addIssue({ code: "custom", message: `response_format is too complex: ${problem}` });
    }),
    strict: z.boolean().optional(),
  }),
});

/**
 * llama.cpp reads the seed as an unsigned 32-bit integer and takes 0xFFFFFFFF (what -1 wraps to)
 * as "pick a random seed", so only 0 … 2^32 − 2 name a reproducible sampling; the rest is refused
 * rather than silently meaning "random" or wrapping around.
 */
export const MAX_SEED = 4_294_967_294;
const SEED_RANGE = `seed must be an integer from 0 to ${MAX_SEED}`;

/**
 * OpenAI's `web_search_options`: present (even `{}`), the answer is grounded in a web search and
 * cites its pages (`message.annotations`). `user_location` is accepted for compatibility; the
 * configured provider does not localise results with it.
 */
const webSearchOptions = z
  .object({
    search_context_size: z.enum(["low", "medium", "high"]).optional(),
    user_location: z
      .object({
        type: z.literal("approximate"),
        approximate: z
          .object({
            city: z.string().max(100).optional(),
            country: z.string().max(2).optional(),
            region: z.string().max(100).optional(),
            timezone: z.string().max(100).optional(),
          })
          .optional(),
      })
      .nullable()
      .optional(),
  })
  .nullable()
  .optional();

/** Most documents (`file_ids`) one request may read. */
export const MAX_REQUEST_FILE_IDS = 20;

export const MAX_MESSAGES = 1024;
export const MAX_MESSAGE_CHARS = 1_000_000;

export const chatCompletionSchema = z.object({
  model: z.string().min(1).max(256),
  messages: z.array(message).min(1, "messages must contain at least one message").max(MAX_MESSAGES),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().min(1).max(1_048_576).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).max(1_048_576).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number({ error: SEED_RANGE }).int({ error: SEED_RANGE }).min(0, { error: SEED_RANGE }).max(MAX_SEED, { error: SEED_RANGE }).nullable().optional(),
  stop: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(16)]).nullable().optional(),
  n: z.number().int().min(1).max(1, "only n=1 is supported").nullable().optional(),
  response_format: z
    // Discriminated, so a refused json_schema reports its own reason, not a generic union mismatch.
    .discriminatedUnion("type", [z.object({ type: z.literal("text") }), z.object({ type: z.literal("json_object") }), jsonSchemaFormat])
    .nullable()
    .optional(),
  reasoning_effort: z.enum(["low", "medium", "high"]).nullable().optional(),
  thinking: z
    .object({
      type: z.enum(["enabled", "disabled"]).optional(),
      budget_tokens: z.number().int().min(0).max(1_048_576).optional(),
    })
    .nullable()
    .optional(),
  user: z.string().max(256).optional(),
  frequency_penalty: penaltySchema,
  presence_penalty: penaltySchema,
  logit_bias: logitBiasSchema,
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: topLogprobsSchema,
  tools: toolsSchema,
  tool_choice: toolChoiceSchema,
  parallel_tool_calls: z.boolean().nullable().optional(),
  web_search_options: webSearchOptions,
  /**
   * Sputnik's extension: ids of the caller's uploaded files (POST /v1/files) to answer from; the
   * answer cites them (`file_citation` annotations). Others' files are 404.
   */
  file_ids: z
    .array(z.string().min(1).max(128))
    .max(MAX_REQUEST_FILE_IDS, `file_ids may name at most ${MAX_REQUEST_FILE_IDS} files`)
    .nullable()
    .optional(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

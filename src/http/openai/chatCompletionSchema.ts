import { z } from "zod";

/**
 * The /v1/chat/completions body, validated with explicit bounds so that negative, huge or
 * ill-typed values get a 400 naming the parameter instead of reaching llama.cpp.
 * Unknown keys are ignored (as OpenAI does), so newer SDKs keep working.
 */
const textPart = z.object({ type: z.literal("text"), text: z.string() });

const content = z.union([z.string(), z.array(textPart).min(1)]).transform((value) =>
  typeof value === "string" ? value : value.map((p) => p.text).join(""),
);

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("system"), content, name: z.string().max(64).optional() }),
  z.object({ role: z.literal("developer"), content, name: z.string().max(64).optional() }),
  z.object({ role: z.literal("user"), content, name: z.string().max(64).optional() }),
  z.object({
    role: z.literal("assistant"),
    content: z.union([content, z.null()]).optional(),
    reasoning_content: z.string().nullable().optional(),
    name: z.string().max(64).optional(),
  }),
  z.object({ role: z.literal("tool"), content, tool_call_id: z.string().optional(), name: z.string().max(64).optional() }),
]);

const jsonSchemaFormat = z.object({
  type: z.literal("json_schema"),
  json_schema: z.object({
    name: z.string().max(64).optional(),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().optional(),
  }),
});

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
  seed: z.number().int().min(-2_147_483_648).max(4_294_967_295).nullable().optional(),
  stop: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(16)]).nullable().optional(),
  n: z.number().int().min(1).max(1, "only n=1 is supported").nullable().optional(),
  response_format: z
    .union([z.object({ type: z.literal("text") }), z.object({ type: z.literal("json_object") }), jsonSchemaFormat])
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
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  logprobs: z.literal(false).nullable().optional(),
  tools: z.array(z.unknown()).max(0, "tools are not supported yet").nullable().optional(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

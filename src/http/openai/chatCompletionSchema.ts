import { z } from "zod";
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

/**
 * Bounds on `response_format.json_schema.schema`. A schema becomes a llama.cpp grammar, and the
 * grammar's cost is not its byte size: llama.cpp expands every alternative that can start at one
 * position into its own parse stack and de-duplicates those stacks pairwise, so a schema that is
 * one 80,000-value enum (692 KiB, well under the body limit) took ~30 s of main-thread CPU to
 * create and slows every sampled token. The limits follow OpenAI's own structured-output limits
 * (at most 1000 enum values, 5000 properties, 10 levels of schema nesting), so real schemas pass.
 */
export const JSON_SCHEMA_LIMITS = {
  /** The schema serialized as JSON, UTF-8 bytes. */
  maxBytes: 256 * 1024,
  /** Nesting of JSON objects and arrays (one schema level is about two: `properties` → name → schema). */
  maxDepth: 32,
  /** Enum values plus oneOf/anyOf branches, summed over the whole schema. */
  maxAlternatives: 1000,
  /** Keys under `properties`, summed over the whole schema. */
  maxProperties: 5000,
  /** Any one key or string value in the schema. */
  maxStringChars: 8192,
} as const;

/**
 * Why `schema` is over JSON_SCHEMA_LIMITS, or null. Iterative (a deeply nested schema must not
 * overflow the stack) and it stops descending at the depth bound, so its cost is linear in the
 * body, which the body limit bounds.
 */
export function jsonSchemaLimitProblem(schema: unknown, limits = JSON_SCHEMA_LIMITS): string | null {
  let alternatives = 0;
  let properties = 0;
  const pending: Array<{ value: unknown; depth: number }> = [{ value: schema, depth: 1 }];
  while (pending.length > 0) {
    const { value, depth } = pending.pop()!;
    if (typeof value === "string") {
      if (value.length > limits.maxStringChars) return `a string in the schema has ${value.length} characters; at most ${limits.maxStringChars} are accepted`;
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (depth > limits.maxDepth) return `the schema is nested more than ${limits.maxDepth} levels deep`;
    if (Array.isArray(value)) {
      for (const item of value) pending.push({ value: item, depth: depth + 1 });
      continue;
    }
    for (const [key, child] of Object.entries(value)) {
      if (key.length > limits.maxStringChars) return `a key in the schema has ${key.length} characters; at most ${limits.maxStringChars} are accepted`;
      // Counted wherever the keyword appears (a property that happens to be named "enum" holds an
      // object, not an array, so it is not miscounted); over-counting only errs on the safe side.
      if ((key === "enum" || key === "oneOf" || key === "anyOf") && Array.isArray(child)) alternatives += child.length;
      if (key === "properties" && child !== null && typeof child === "object" && !Array.isArray(child)) properties += Object.keys(child).length;
      if (alternatives > limits.maxAlternatives) {
        return `the schema has more than ${limits.maxAlternatives} enum values and oneOf/anyOf branches in all; at most ${limits.maxAlternatives} are accepted`;
      }
      if (properties > limits.maxProperties) return `the schema has more than ${limits.maxProperties} properties in all; at most ${limits.maxProperties} are accepted`;
      pending.push({ value: child, depth: depth + 1 });
    }
  }
  // Safe now: the depth bound keeps JSON.stringify's recursion shallow.
  const bytes = Buffer.byteLength(JSON.stringify(schema), "utf8");
  if (bytes > limits.maxBytes) return `the schema is ${bytes} bytes as JSON; at most ${limits.maxBytes} are accepted`;
  return null;
}

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
});

export type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

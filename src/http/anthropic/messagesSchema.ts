import { z } from "zod";
import { MAX_MESSAGES } from "../openai/chatCompletionSchema.ts";
import { jsonSchemaLimitProblem } from "../openai/jsonSchemaLimits.ts";

/**
 * The POST /anthropic/v1/messages body (Anthropic's Messages API), validated with explicit bounds
 * so that a bad value gets a 400 naming the parameter in Anthropic's error shape. Unknown keys are
 * ignored (as Anthropic does with newer fields), so newer SDKs keep working. What Sputnik cannot do
 * (images, documents, server tools) is refused by name, never silently dropped.
 */

/** `cache_control` marks are accepted and ignored: Sputnik's prompt cache needs no opt-in. */
const cacheControl = z.object({ type: z.string() }).passthrough().nullable().optional();

const textBlock = z.object({ type: z.literal("text"), text: z.string(), cache_control: cacheControl, citations: z.unknown().optional() });

/** A block type a text model cannot take: refused with the block's `type` as the param. */
const refused = <T extends string>(type: T, what: string) =>
  z.object({ type: z.literal(type) }).passthrough().superRefine((_block, ctx) => {
    ctx.addIssue({ code: "custom", path: ["type"], message: `${what} are not supported by Sputnik's models (text only)` });
  });

const toolResultContent = z.union([
  z.string(),
  z.array(z.discriminatedUnion("type", [textBlock, refused("image", "images"), refused("document", "documents")])),
]);

const toolResultBlock = z.object({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1).max(256),
  content: toolResultContent.optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

const toolUseBlock = z.object({
  type: z.literal("tool_use"),
  id: z.string().min(1).max(256),
  name: z.string().min(1).max(128),
  input: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
});

/** Earlier turns' reasoning: accepted so clients can send their history back as they got it, then dropped. */
const thinkingBlock = z.object({ type: z.literal("thinking"), thinking: z.string(), signature: z.string().optional() });
const redactedThinkingBlock = z.object({ type: z.literal("redacted_thinking"), data: z.string() });

const userBlock = z.discriminatedUnion("type", [
  textBlock,
  toolResultBlock,
  refused("image", "images"),
  refused("document", "documents"),
  refused("search_result", "search results"),
]);
const assistantBlock = z.discriminatedUnion("type", [
  textBlock,
  toolUseBlock,
  thinkingBlock,
  redactedThinkingBlock,
  refused("server_tool_use", "server tools"),
  refused("web_search_tool_result", "server tools"),
]);

/** A string content is one text block; as blocks, errors name the block at fault (a union would hide it). */
const asBlocks = (value: unknown) => (typeof value === "string" ? [{ type: "text", text: value }] : value);

const message = z.discriminatedUnion("role", [
  z.object({ role: z.literal("user"), content: z.preprocess(asBlocks, z.array(userBlock).min(1)) }),
  z.object({ role: z.literal("assistant"), content: z.preprocess(asBlocks, z.array(assistantBlock)) }),
]);

/** Anthropic's tool names: letters, digits, `_` and `-`, at most 64 (also what OpenAI-style templates accept). */
const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "a tool name is 1 to 64 letters, digits, '_' or '-'");

const tool = z
  .object({
    name: toolName,
    description: z.string().max(16_384).optional(),
    input_schema: z
      .record(z.string(), z.unknown())
      .superRefine((schema, ctx) => {
        const problem = jsonSchemaLimitProblem(schema);
        if (problem) ctx.addIssue({ code: "custom", message: `input_schema is too complex: ${problem}` });
      })
      .optional(),
    /** `custom` (or absent) is a client tool; Anthropic's server tools (web search, code execution…) are not served. */
    type: z.string().optional(),
    cache_control: cacheControl,
  })
  .passthrough()
  .superRefine((t, ctx) => {
    if (t.type !== undefined && t.type !== "custom") {
      ctx.addIssue({ code: "custom", path: ["type"], message: `only client tools (type 'custom' or none) are supported; Anthropic's server tool '${t.type}' is not` });
    } else if (t.input_schema === undefined) {
      ctx.addIssue({ code: "custom", path: ["input_schema"], message: "input_schema is required" });
    }
  });

const parallel = { disable_parallel_tool_use: z.boolean().optional() };
const toolChoice = z.discriminatedUnion("type", [
  z.object({ type: z.literal("auto"), ...parallel }),
  z.object({ type: z.literal("any"), ...parallel }),
  z.object({ type: z.literal("tool"), name: toolName, ...parallel }),
  z.object({ type: z.literal("none") }),
]);

const thinking = z.discriminatedUnion("type", [
  // Anthropic asks for at least 1024; Sputnik's small models and budgets may use less.
  z.object({ type: z.literal("enabled"), budget_tokens: z.number().int().min(1).max(1_048_576) }),
  z.object({ type: z.literal("disabled") }),
]);

export const MAX_TOOLS = 128;

const messagesFields = {
  model: z.string().min(1).max(256),
  // Required, as Anthropic requires it.
  max_tokens: z.number().int().min(1).max(1_048_576),
  messages: z.array(message).min(1, "messages must contain at least one message").max(MAX_MESSAGES),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  stop_sequences: z.array(z.string().min(1).max(256)).max(16).optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  top_k: z.number().int().min(1).max(1_000_000).optional(),
  tools: z.array(tool).max(MAX_TOOLS).optional(),
  tool_choice: toolChoice.optional(),
  thinking: thinking.optional(),
  stream: z.boolean().optional(),
  metadata: z.object({ user_id: z.string().max(256).nullable().optional() }).optional(),
  // What would change the answer and cannot be honoured is refused by name.
  mcp_servers: z.array(z.unknown()).max(0, "MCP servers are not supported").optional(),
  container: z.null({ error: "containers (code execution) are not supported" }).optional(),
};

type Fields = z.infer<z.ZodObject<typeof messagesFields>>;

/** The checks across fields, shared by a message request and a token count. */
function crossChecks(body: Omit<Fields, "max_tokens"> & { max_tokens?: number }, ctx: z.RefinementCtx): void {
  if (body.thinking?.type === "enabled" && body.max_tokens !== undefined && body.thinking.budget_tokens >= body.max_tokens) {
    ctx.addIssue({ code: "custom", path: ["thinking", "budget_tokens"], message: "budget_tokens must be less than max_tokens" });
  }
  if (body.tool_choice?.type === "tool" && !body.tools?.some((t) => t.name === (body.tool_choice as { name: string }).name)) {
    ctx.addIssue({ code: "custom", path: ["tool_choice", "name"], message: "tool_choice names a tool that is not in tools" });
  }
  if ((body.tool_choice?.type === "any" || body.tool_choice?.type === "tool") && !body.tools?.length) {
    ctx.addIssue({ code: "custom", path: ["tool_choice"], message: "tool_choice requires tools" });
  }
}

export const messagesSchema = z.object(messagesFields).superRefine(crossChecks);

export type MessagesBody = z.infer<typeof messagesSchema>;

/**
 * POST /v1/messages/count_tokens: the same body without `max_tokens` (nothing is generated) and
 * without `stream`; everything else is validated as a message request is.
 */
export const countTokensSchema = z
  .object({ ...messagesFields, max_tokens: messagesFields.max_tokens.optional(), stream: z.undefined({ error: "count_tokens does not stream" }).optional() })
  .superRefine(crossChecks);

export type CountTokensBody = z.infer<typeof countTokensSchema>;

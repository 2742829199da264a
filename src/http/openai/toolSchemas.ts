import { z } from "zod";
import { ServiceError } from "../../errors.ts";
import type { GenerationRequest, ToolCall, ToolChoice, ToolDefinition } from "../../engines/types.ts";
import { jsonSchemaLimitProblem } from "./jsonSchemaLimits.ts";

/**
 * Function calling in the /v1/chat/completions body (OpenAI's and DeepSeek's shapes): `tools`,
 * `tool_choice`, `parallel_tool_calls`, and the `tool_calls` of earlier assistant messages.
 * Everything whose cost grows with the request is bounded: the number of tools and calls, name
 * and description lengths, and each parameters schema by the response_format bounds (a strict
 * schema becomes a grammar; every schema is written into the prompt).
 */

/** At most this many tools per request (OpenAI's own limit). */
export const MAX_TOOLS = 128;
/** Calls in one assistant message. */
export const MAX_TOOL_CALLS = 128;
const MAX_DESCRIPTION_CHARS = 8192;
/** Arguments of one earlier call, as JSON text. */
const MAX_ARGUMENTS_CHARS = 256 * 1024;

/** OpenAI's rule for function names; it also keeps names free of whitespace, which chat templates need. */
const functionName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "function names are 1–64 letters, digits, underscores or dashes");

const tool = z.object({
  type: z.literal("function"),
  function: z.object({
    name: functionName,
    description: z.string().max(MAX_DESCRIPTION_CHARS).nullable().optional(),
    parameters: z
      .record(z.string(), z.unknown())
      .superRefine((schema, ctx) => {
        const problem = jsonSchemaLimitProblem(schema);
        if (problem) ctx.addIssue({ code: "custom", message: `parameters is too complex: ${problem}` });
      })
      .nullable()
      .optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

export const toolsSchema = z
  .array(tool)
  .max(MAX_TOOLS, `at most ${MAX_TOOLS} tools are accepted`)
  .superRefine((tools, ctx) => {
    const seen = new Set<string>();
    tools.forEach((t, i) => {
      if (seen.has(t.function.name)) ctx.addIssue({ code: "custom", path: [i, "function", "name"], message: `duplicate function name "${t.function.name}"` });
      seen.add(t.function.name);
    });
  })
  .nullable()
  .optional();

export const toolChoiceSchema = z
  .union([
    z.enum(["none", "auto", "required"]),
    z.object({ type: z.literal("function"), function: z.object({ name: functionName }) }),
  ])
  .nullable()
  .optional();

export const toolCallsSchema = z
  .array(
    z.object({
      id: z.string().min(1).max(256),
      type: z.literal("function"),
      function: z.object({ name: functionName, arguments: z.string().max(MAX_ARGUMENTS_CHARS) }),
    }),
  )
  .max(MAX_TOOL_CALLS)
  .nullable()
  .optional();

type ToolsBody = {
  tools?: z.infer<typeof toolsSchema>;
  tool_choice?: z.infer<typeof toolChoiceSchema>;
  parallel_tool_calls?: boolean | null;
};

/**
 * The request's tool fields for the engine; a named tool_choice that is not among the tools (or
 * required/named without tools) is a 400 naming `tool_choice`.
 */
export function toolFields(body: ToolsBody): Pick<GenerationRequest, "tools" | "toolChoice" | "parallelToolCalls"> {
  const tools: ToolDefinition[] = (body.tools ?? []).map(({ function: f }) => ({
    name: f.name,
    ...(f.description ? { description: f.description } : {}),
    ...(f.parameters ? { parameters: f.parameters } : {}),
    ...(f.strict ? { strict: true } : {}),
  }));
  const choice = body.tool_choice ?? undefined;
  let toolChoice: ToolChoice | undefined;
  if (typeof choice === "object") {
    if (!tools.some((t) => t.name === choice.function.name)) {
      throw new ServiceError("invalid_request", `tool_choice names the function "${choice.function.name}", which is not in tools.`, {
        code: "invalid_tool_choice",
        param: "tool_choice",
      });
    }
    toolChoice = { name: choice.function.name };
  } else if (choice !== undefined) {
    if (choice === "required" && tools.length === 0) {
      throw new ServiceError("invalid_request", `tool_choice "required" needs at least one tool in tools.`, { code: "invalid_tool_choice", param: "tool_choice" });
    }
    toolChoice = choice;
  }
  return {
    ...(tools.length > 0 ? { tools } : {}),
    ...(toolChoice && tools.length > 0 ? { toolChoice } : {}),
    ...(body.parallel_tool_calls === false ? { parallelToolCalls: false } : {}),
  };
}

/** An assistant message's tool calls in the engine's shape. */
export function toToolCalls(calls: z.infer<typeof toolCallsSchema>): ToolCall[] | undefined {
  if (!calls || calls.length === 0) return undefined;
  return calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
}

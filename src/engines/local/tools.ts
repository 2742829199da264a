/**
 * Function calling for local models, on node-llama-cpp's own support: the model's chat wrapper
 * documents the tools in the prompt and renders earlier calls and results in the model's native
 * syntax, and LlamaChat's function-calling loop detects a call, constrains its name to the offered
 * functions and its arguments to a JSON grammar, and stops the turn after the calls. So no
 * model-specific parsing lives here; this file maps the API's tools onto that machinery:
 *
 * - `strict` tools: arguments are constrained by the tool's JSON schema (node-llama-cpp's
 *   grammar, which makes every listed property required, as OpenAI's strict mode does). Other
 *   tools: arguments are constrained to be any JSON object, so they always parse, but the schema is
 *   only documented to the model (documentation always shows the real schema).
 * - `tool_choice: "none"` (or no tools): no tools are rendered and no call is detected.
 *   `"required"` / a named function: the chat wrapper reports the call as "initially engaged", so
 *   node-llama-cpp writes the call prefix itself at the start of the answer and the model continues
 *   with a name (for a named choice, only that function is callable; all tools stay documented so
 *   the prompt, and its cached prefix, do not depend on the choice). The model does not reason first.
 * - `parallel_tool_calls: false`: at most one call per turn.
 * - Malformed calls: once a call's syntax has begun, names and arguments are grammar-constrained,
 *   so a recognised call is always well formed. Output that resembles a call but does not match
 *   the wrapper's syntax (e.g. a missing section prefix) is not a call: it is returned verbatim as
 *   content with finish_reason "stop", never an error.
 *
 * Tool results are rendered verbatim (the model's Jinja template inserts the `tool` message's
 * content as is; node-llama-cpp would JSON-quote a string result), and earlier calls are rendered
 * from the arguments text the client sent back (`rawCall`), so a call the model wrote is sent back
 * token for token and its KV state is reused.
 */
import { randomBytes } from "node:crypto";
import {
  LlamaText,
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatModelFunctions,
  type ChatModelResponse,
  type ChatWrapper,
  type ChatWrapperGenerateContextStateOptions,
  type ChatWrapperGeneratedContextState,
} from "node-llama-cpp";
import { EngineError, type ChatMessage, type EngineEvent, type GenerationRequest, type ToolCall } from "../types.ts";

/** Arguments of a non-strict tool: any JSON object (node-llama-cpp's schema dialect). */
const ANY_OBJECT = { type: "object", additionalProperties: true } as const;

export interface ToolPlan {
  /** What LlamaChat may call: names and argument grammars. */
  callable: ChatModelFunctions;
  /** What the prompt documents: every tool with its real schema. */
  documented: ChatModelFunctions;
  /** A call must be made (tool_choice required or named). */
  forced: boolean;
  /** 1 when parallel_tool_calls is false. */
  maxParallel: number | undefined;
}

/** The tools a request offers the model, or null when it offers none (no tools, or tool_choice "none"). */
export function planTools(request: Pick<GenerationRequest, "tools" | "toolChoice" | "parallelToolCalls">): ToolPlan | null {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? "auto";
  if (tools.length === 0 || choice === "none") return null;
  const documented: Record<string, ChatModelFunctions[string]> = {};
  const callable: Record<string, ChatModelFunctions[string]> = {};
  for (const tool of tools) {
    const description = tool.description ? { description: tool.description } : {};
    documented[tool.name] = { ...description, params: (tool.parameters ?? ANY_OBJECT) as ChatModelFunctions[string]["params"] };
    if (typeof choice === "object" && choice.name !== tool.name) continue;
    callable[tool.name] = { ...description, params: (tool.strict && tool.parameters ? tool.parameters : ANY_OBJECT) as ChatModelFunctions[string]["params"] };
  }
  if (Object.keys(callable).length === 0) {
    // The HTTP layer refuses this first; an engine caller that did not still gets a clear 400.
    throw new EngineError(`tool_choice names a function that is not in tools.`, 400, "invalid_tool_choice", "tool_choice");
  }
  return { callable, documented, forced: choice !== "auto", maxParallel: request.parallelToolCalls === false ? 1 : undefined };
}

/** Whether a request needs the tool-aware chat wrapper (tools offered, or tool turns in its history). */
export function involvesTools(request: Pick<GenerationRequest, "messages" | "tools" | "toolChoice">, plan: ToolPlan | null): boolean {
  return plan !== null || request.messages.some((m) => m.role === "tool" || (m.tool_calls?.length ?? 0) > 0);
}

/**
 * The model's chat wrapper with this request's tool behaviour layered on (a prototype overlay:
 * everything else, settings included, is the wrapper's own).
 */
export function toolChatWrapper(base: ChatWrapper, plan: ToolPlan | null): ChatWrapper {
  const overlay = Object.create(base) as ChatWrapper & {
    _generateFunctionCallResult(name: string, params: unknown, raw: string): LlamaText;
  };
  const original = base as typeof overlay;
  overlay.generateFunctionCallResult = function (this: typeof overlay, name, params, result) {
    // Verbatim, as the model's Jinja template renders a tool message's content.
    return original._generateFunctionCallResult.call(this, name, params, typeof result === "string" ? result : JSON.stringify(result ?? null));
  };
  if (plan) {
    overlay.generateAvailableFunctionsSystemText = function (this: typeof overlay, _functions, options) {
      return base.generateAvailableFunctionsSystemText.call(this, plan.documented, options);
    };
    if (plan.forced) {
      overlay.generateContextState = function (this: typeof overlay, options: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
        const state = base.generateContextState.call(this, options);
        return { ...state, functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] } } as ChatWrapperGeneratedContextState;
      };
    }
  }
  return overlay;
}

/** `call_` + 24 hex digits, as OpenAI's ids look. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

/**
 * API messages → node-llama-cpp chat history, tool turns included: an assistant message's
 * `tool_calls` become function-call items of its model turn, answered by the `tool` messages that
 * follow (by `tool_call_id`, else in order); an assistant message after them continues the same
 * model turn, as the templates render it. Returns the history and whether it ends inside a model
 * turn (tool results are the last messages: the answer continues that turn).
 */
export function toolAwareHistory(messages: ChatMessage[], wrapper?: ChatWrapper): { history: ChatHistoryItem[]; endsInModelTurn: boolean } {
  const history: ChatHistoryItem[] = [];
  // The model turn that tool results and a following assistant message extend.
  let open = null as OpenTurn | null;
  for (const message of messages) {
    switch (message.role) {
      case "system":
        open = null;
        history.push({ type: "system", text: message.content });
        break;
      case "user":
        open = null;
        history.push({ type: "user", text: message.content });
        break;
      case "assistant": {
        const calls = message.tool_calls ?? [];
        const item: ChatModelResponse = open && open.calls.every((c) => c.answered) ? open.item : { type: "model", response: [] };
        if (item !== open?.item) history.push(item);
        if (message.content) item.response.push(message.content);
        if (calls.length === 0) {
          open = null;
          break;
        }
        const callItems = calls.map((call) => ({ id: call.id, item: functionCallItem(call, wrapper), answered: false }));
        item.response.push(...callItems.map((c) => c.item));
        open = { item, calls: callItems };
        break;
      }
      case "tool": {
        const call = open?.calls.find((c) => !c.answered && c.id === message.tool_call_id) ?? open?.calls.find((c) => !c.answered);
        if (!call) {
          // A result with no call to answer: shown to the model as user text.
          open = null;
          history.push({ type: "user", text: `Tool result${message.name ? ` (${message.name})` : ""}:\n${message.content}` });
          break;
        }
        call.item.result = message.content;
        call.answered = true;
        break;
      }
    }
  }
  const endsInModelTurn = open !== null && open.calls.every((c) => c.answered) && messages.at(-1)?.role === "tool";
  return { history, endsInModelTurn };
}

interface OpenTurn {
  item: ChatModelResponse;
  calls: Array<{ id: string; item: ChatModelFunctionCall; answered: boolean }>;
}

function functionCallItem(call: ToolCall, wrapper: ChatWrapper | undefined): ChatModelFunctionCall {
  let params: unknown = call.arguments;
  try {
    params = JSON.parse(call.arguments);
  } catch {
    // Kept as text: rawCall below renders the arguments as sent either way.
  }
  if (!wrapper) return { type: "functionCall", name: call.name, params, result: undefined };
  const syntax = wrapper.settings.functions.call;
  // As node-llama-cpp renders a call it parsed (some wrappers name the function in the suffix).
  const named = (text: typeof syntax.suffix) =>
    LlamaText(text).mapValues((value) => (typeof value === "string" ? value.replaceAll("{{functionName}}", call.name) : value));
  const rawCall = LlamaText([syntax.prefix, call.name, named(syntax.paramsPrefix), call.arguments, named(syntax.suffix)]).toJSON();
  return { type: "functionCall", name: call.name, params, result: undefined, rawCall };
}

/**
 * Turns node-llama-cpp's `onFunctionCallParamsChunk` stream into tool_call events. Its chunks end
 * with the grammar's end-of-arguments marker (four newlines), which is not part of the arguments:
 * trailing newlines are held until more text shows they were inside the JSON.
 */
export class ToolCallStream {
  private readonly calls: Array<{ id: string; name: string; text: string; held: string }> = [];

  constructor(private readonly emit: (event: EngineEvent) => void) {}

  chunk(index: number, name: string, text: string): void {
    let call = this.calls[index];
    if (!call) {
      call = { id: toolCallId(), name, text: "", held: "" };
      this.calls[index] = call;
      this.emit({ type: "tool_call", index, id: call.id, name });
    }
    const body = text.replace(/\n+$/, "");
    const trailing = text.slice(body.length);
    if (body.length === 0) {
      call.held += trailing;
      return;
    }
    const out = call.held + body;
    call.held = trailing;
    call.text += out;
    this.emit({ type: "tool_call_arguments", index, text: out });
  }

  /** Announces calls node-llama-cpp reported without streaming their arguments (no params). */
  finish(functionCalls: ReadonlyArray<{ functionName: string; params: unknown }>): ToolCall[] {
    functionCalls.forEach((call, index) => {
      if (this.calls[index]) return;
      this.chunk(index, call.functionName, JSON.stringify(call.params ?? {}));
    });
    return this.calls.map((c) => ({ id: c.id, name: c.name, arguments: c.text }));
  }
}

/**
 * Chat-wrapper settings for tool calling in each model family's native syntax. node-llama-cpp's
 * DeepSeekChatWrapper defaults to a workaround syntax (`<function=name>…</function>`) meant for
 * R1 distills; DeepSeek's templates (R1, R1-0528, V3) and API use the `<｜tool▁calls▁begin｜>` one.
 * QwenChatWrapper's defaults already are Qwen2.5's native `<tool_call>` syntax (parallel calls
 * included), so it needs no settings here (test/tools-local.test.ts covers both families).
 */
export const NATIVE_TOOL_SYNTAX = {
  deepSeek: { functionCallingSyntax: "original", parallelFunctionCalling: true },
} as const;

/**
 * Cheap request checks (no tokenizing): the named function exists, and tools are not combined with
 * a response_format grammar (node-llama-cpp cannot constrain both at once).
 */
export function checkTools(request: GenerationRequest): void {
  const plan = planTools(request);
  if (plan && request.responseFormat && request.responseFormat.type !== "text") {
    throw new EngineError("response_format cannot be combined with tools on this model; send tool_choice \"none\" or no response_format.", 400, "unsupported_parameter", "response_format");
  }
}

/**
 * Strict tools' schemas must become grammars: built (and cached) through the response_format
 * grammar factory, off the event loop and under its time budget, so a schema node-llama-cpp cannot
 * express is a 400 before generation, naming the tool, rather than a failure in mid-answer.
 */
export async function checkStrictTools(
  request: GenerationRequest,
  grammarFor: (schema: Record<string, unknown>) => Promise<unknown>,
): Promise<void> {
  const plan = planTools(request);
  if (!plan) return;
  const tools = request.tools ?? [];
  for (let i = 0; i < tools.length; i++) {
    const tool = tools[i]!;
    if (!tool.strict || !tool.parameters || !Object.hasOwn(plan.callable, tool.name)) continue;
    try {
      const unknown = unknownType(tool.parameters);
      if (unknown !== null) throw new Error(`is not supported: unknown type ${JSON.stringify(unknown)}`);
      await grammarFor(tool.parameters);
    } catch (error) {
      const why = error instanceof Error ? error.message.replace(/^response_format\.json_schema\.schema /, "") : String(error);
      const status = error instanceof EngineError ? error.status : (error as { kind?: string }).kind === "unprocessable" ? 422 : 400;
      throw new EngineError(`tools[${i}].function.parameters (strict) ${why}`, status === 422 ? 422 : 400, "invalid_tool_schema", `tools[${i}].function.parameters`);
    }
  }
}

const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);

/**
 * A `type` value node-llama-cpp's converter would pass over but its argument validation then
 * rejects (so the call would fail after it was written), or null. Iterative; the request bounds
 * (jsonSchemaLimitProblem) keep the schema small.
 */
function unknownType(schema: unknown): unknown {
  const pending: unknown[] = [schema];
  while (pending.length > 0) {
    const value = pending.pop();
    if (value === null || typeof value !== "object") continue;
    if (Array.isArray(value)) {
      pending.push(...value);
      continue;
    }
    for (const [key, child] of Object.entries(value)) {
      if (key === "type") {
        const types = Array.isArray(child) ? child : [child];
        const bad = types.find((t) => typeof t !== "string" || !JSON_TYPES.has(t));
        if (bad !== undefined) return bad;
      } else if (key !== "enum" && key !== "const") pending.push(child);
    }
  }
  return null;
}

/**
 * node-llama-cpp's check of a finished call's arguments against the schema failed (a schema
 * feature its grammar does not enforce): a clear 422-style engine error instead of a crash report.
 */
export function toolCallFailure(error: unknown): EngineError | null {
  if (!(error instanceof Error) || error.constructor.name !== "LlamaFunctionCallValidationError") return null;
  return new EngineError(`The model's tool call did not validate against the tool's schema: ${error.message}`, 422, "tool_call_invalid", "tools");
}

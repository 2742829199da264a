import { randomBytes } from "node:crypto";

/**
 * Tool calls from an OpenAI-compatible upstream, as the engine contract's `tool_call` /
 * `tool_call_arguments` events (src/engines/types.ts): calls numbered from 0 in the answer, each
 * begun once, its arguments following before the next call begins.
 *
 * Two sources: the upstream's own `tool_calls` deltas (vLLM, SGLang, llama-server --jinja, the
 * DeepSeek API, another Sputnik), and tool calls an upstream left inline in the answer's text
 * because it runs without a tool parser (e.g. Qwen's `<tool_call>{…}</tool_call>`, DeepSeek's
 * `<｜tool▁calls▁begin｜>…`), which `InlineToolCalls` turns into real calls.
 */
export interface ToolCallSink {
  call(index: number, id: string, name: string): void;
  arguments(index: number, text: string): void;
}

export function toolCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

/** One streamed `tool_calls[]` entry as OpenAI-compatible servers send it. */
export interface ToolCallDelta {
  index?: number;
  id?: string | null;
  type?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

/** The calls of one answer: both sources share the numbering. */
export class ToolCallCounter {
  private next = 0;
  constructor(readonly sink: ToolCallSink) {}

  get count(): number {
    return this.next;
  }

  begin(id: string, name: string): number {
    const index = this.next++;
    this.sink.call(index, id, name);
    return index;
  }
}

/**
 * Assembles streamed `tool_calls` deltas. A call begins once its name is known (OpenAI-style
 * servers send the id and the whole name in the call's first delta); arguments seen before that
 * are held. An upstream that sends no id gets one made here, so a client can answer the call.
 */
export class StreamedToolCalls {
  private readonly calls = new Map<number, { id: string | null; name: string; ours: number | null; held: string }>();

  constructor(private readonly counter: ToolCallCounter) {}

  push(deltas: ToolCallDelta[]): void {
    deltas.forEach((delta, position) => {
      const key = delta.index ?? position;
      let call = this.calls.get(key);
      if (!call) {
        call = { id: null, name: "", ours: null, held: "" };
        this.calls.set(key, call);
      }
      if (delta.id && call.id === null) call.id = delta.id;
      if (delta.function?.name && call.ours === null) call.name += delta.function.name;
      const args = delta.function?.arguments ?? "";
      if (call.ours === null && call.name) {
        call.ours = this.counter.begin(call.id ?? toolCallId(), call.name);
        if (call.held) this.counter.sink.arguments(call.ours, call.held);
        call.held = "";
      }
      if (!args) return;
      if (call.ours === null) call.held += args;
      else this.counter.sink.arguments(call.ours, args);
    });
  }
}

const DS = {
  callsBegin: "<｜tool▁calls▁begin｜>",
  callsEnd: "<｜tool▁calls▁end｜>",
  callBegin: "<｜tool▁call▁begin｜>",
  callEnd: "<｜tool▁call▁end｜>",
  sep: "<｜tool▁sep｜>",
} as const;

/** The inline syntaxes recognised: where a block opens and closes. */
const SYNTAXES = [
  { open: "<tool_call>", close: "</tool_call>", parse: parseHermesBlock },
  { open: DS.callsBegin, close: DS.callsEnd, parse: parseDeepSeekBlock },
] as const;

type Syntax = (typeof SYNTAXES)[number];

export interface ParsedCall {
  name: string;
  arguments: string;
}

/**
 * Finds tool calls written inline in an answer's text and hands them on as calls; the rest of the
 * text passes through as content. An opener split across chunks is held until it resolves, and a
 * block's text is held until it closes. A block that does not parse (unknown shape, invalid JSON
 * arguments) is passed on verbatim as content — the client sees what the model wrote, and the
 * answer's finish reason stays `stop` unless a real call was made. Use it only when the request
 * offered tools: otherwise such text is just text.
 */
export class InlineToolCalls {
  private pending = "";
  private block: Syntax | null = null;
  private found = 0;

  constructor(
    private readonly content: (text: string) => void,
    private readonly counter: ToolCallCounter,
  ) {}

  /** Calls found so far. */
  get calls(): number {
    return this.found;
  }

  push(text: string): void {
    this.pending += text;
    for (;;) {
      if (this.block) {
        const end = this.pending.indexOf(this.block.close, this.block.open.length);
        if (end < 0) return;
        const whole = this.pending.slice(0, end + this.block.close.length);
        this.pending = this.pending.slice(whole.length);
        this.finishBlock(this.block, whole, whole.slice(this.block.open.length, end));
        continue;
      }
      const next = firstOpener(this.pending);
      if (next) {
        if (next.at > 0) this.content(this.pending.slice(0, next.at));
        this.pending = this.pending.slice(next.at);
        this.block = next.syntax;
        continue;
      }
      const keep = partialOpenerSuffix(this.pending);
      if (this.pending.length > keep) this.content(this.pending.slice(0, this.pending.length - keep));
      this.pending = this.pending.slice(this.pending.length - keep);
      return;
    }
  }

  /** The answer ended: a block left open is parsed as it stands (upstreams may stop before the closer). */
  flush(): void {
    if (this.block) this.finishBlock(this.block, this.pending, this.pending.slice(this.block.open.length));
    else if (this.pending) this.content(this.pending);
    this.pending = "";
  }

  private finishBlock(syntax: Syntax, whole: string, inner: string): void {
    this.block = null;
    const calls = syntax.parse(inner);
    if (!calls) {
      this.content(whole);
      return;
    }
    for (const call of calls) {
      const index = this.counter.begin(toolCallId(), call.name);
      this.counter.sink.arguments(index, call.arguments);
      this.found++;
    }
  }
}

function firstOpener(text: string): { at: number; syntax: Syntax } | null {
  let best: { at: number; syntax: Syntax } | null = null;
  for (const syntax of SYNTAXES) {
    const at = text.indexOf(syntax.open);
    if (at >= 0 && (best === null || at < best.at)) best = { at, syntax };
  }
  return best;
}

/** Length of the longest suffix of `text` that could begin an opener. */
function partialOpenerSuffix(text: string): number {
  let keep = 0;
  for (const { open } of SYNTAXES) {
    for (let n = Math.min(open.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(open.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}

/** Arguments as a JSON object text, or null when they are not one. Kept as written when valid. */
function objectArguments(value: unknown, raw?: string): string | null {
  if (typeof value === "string") {
    try {
      return objectArguments(JSON.parse(value), value);
    } catch {
      return null;
    }
  }
  if (value === undefined) return "{}";
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  return raw ?? JSON.stringify(value);
}

/**
 * Qwen2.5/3, Hermes and many others: `<tool_call>\n{"name": "f", "arguments": {…}}\n</tool_call>`,
 * one block per call.
 */
export function parseHermesBlock(inner: string): ParsedCall[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(inner.trim());
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== "object") return null;
  const { name, arguments: args, parameters } = parsed as { name?: unknown; arguments?: unknown; parameters?: unknown };
  if (typeof name !== "string" || name === "") return null;
  const text = objectArguments(args ?? parameters);
  return text === null ? null : [{ name, arguments: text }];
}

/**
 * DeepSeek's section of calls, between `<｜tool▁calls▁begin｜>` and `<｜tool▁calls▁end｜>`, each
 * call between `<｜tool▁call▁begin｜>` and `<｜tool▁call▁end｜>` in one of its two spellings:
 * - R1 / V3: `function<｜tool▁sep｜>NAME\n```json\nARGS\n```` ;
 * - V3.1 and later: `NAME<｜tool▁sep｜>ARGS`.
 * Null when any call in the section does not parse: the section is then returned as text whole.
 */
export function parseDeepSeekBlock(inner: string): ParsedCall[] | null {
  const calls: ParsedCall[] = [];
  let rest = inner;
  for (;;) {
    const begin = rest.indexOf(DS.callBegin);
    if (begin < 0) break;
    if (rest.slice(0, begin).trim() !== "") return null;
    const end = rest.indexOf(DS.callEnd, begin);
    const body = rest.slice(begin + DS.callBegin.length, end < 0 ? undefined : end);
    rest = end < 0 ? "" : rest.slice(end + DS.callEnd.length);
    const call = parseDeepSeekCall(body);
    if (!call) return null;
    calls.push(call);
  }
  if (rest.trim() !== "" || calls.length === 0) return null;
  return calls;
}

function parseDeepSeekCall(body: string): ParsedCall | null {
  const sep = body.indexOf(DS.sep);
  if (sep < 0) return null;
  const head = body.slice(0, sep).trim();
  const tail = body.slice(sep + DS.sep.length);
  if (head === "function") {
    const fenced = /^([^\n]+)\n```(?:json)?\n([\s\S]*?)\n?```\s*$/.exec(tail);
    if (!fenced) return null;
    const args = objectArguments(fenced[2]!.trim());
    return args === null ? null : { name: fenced[1]!.trim(), arguments: args };
  }
  if (!head) return null;
  const args = objectArguments(tail.trim());
  return args === null ? null : { name: head, arguments: args };
}

/**
 * The tool-calling test models: scripted n-gram models (planned by ngram.ts, weights from
 * ngramModel.ts) that call functions in the DeepSeek-R1 template's native syntax, as Sputnik's
 * local engine drives them through node-llama-cpp's function-calling loop (DeepSeekChatWrapper,
 * `functionCallingSyntax: "original"`, parallel calls on; see src/engines/local/tools.ts). Tests
 * import TOOL_SCRIPTS to compare exactly.
 *
 * What the model sees and writes in one call (◇ = written by the engine, not the model):
 *
 *     <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n ◇```json\n ARGS
 *     (then "\n\n\n\n", node-llama-cpp's end-of-arguments marker, which it replaces by)
 *     ◇\n```<｜tool▁call▁end｜>
 *
 * then `\n` for another call (node-llama-cpp takes it out again while the next call is written: it
 * renders ◇`<｜tool▁call▁begin｜>function<｜tool▁sep｜>` right after the previous call's end, and
 * puts the `\n` between them back in the history), or `<｜tool▁calls▁end｜><｜end▁of▁sentence｜>`
 * to end the turn. Arguments are written as
 * node-llama-cpp renders them back (Python's json.dumps spacing), so a call sent back in the next
 * request is the very text the model wrote. After the tool outputs the wrapper renders
 * `<｜tool▁outputs▁end｜><｜Assistant｜>`; the model answers there with reasoning and text.
 *
 * The `family: "qwen"` models are qwen2-architecture files with Qwen2.5-Instruct's template, so
 * node-llama-cpp drives them with its QwenChatWrapper (variation "3"). One call, as the model sees
 * and writes it after the wrapper's `<|im_start|>assistant\n`:
 *
 *     <tool_call>\n{"name": "NAME   (then "\n", the name grammar's end, taken out again)
 *     ◇", "arguments": ARGS   (then "\n\n\n\n", taken out again)   ◇}\n</tool_call>
 *
 * then `\n` for another call (taken out again: ◇`<tool_call>\n{"name": "` follows the previous
 * `</tool_call>` directly; the history puts the `\n` between them back) or `<|im_end|>` (EOS) to
 * end the turn. After the tool results the wrapper renders
 * `\n</tool_response><|im_end|>\n<|im_start|>assistant\n`; the model answers there (no reasoning:
 * Qwen2.5 does not think).
 */
import { addTokenizer } from "./tokenizer.ts";
import { planRuns, ScriptError, vocabularyForRuns, type NgramPlan, type Run, type Segment } from "./ngram.ts";
import { buildNgramModel } from "./ngramModel.ts";
import { addQwenTokenizer, QWEN, QWEN_SPECIAL_TOKENS } from "./qwenTokenizer.ts";
import type { GgufWriter } from "./writer.ts";

export interface ScriptedToolCall {
  name: string;
  /** JSON text as the model writes it (json.dumps spacing). */
  arguments: string;
}

export interface ToolScript {
  /** Whose template and call syntax: DeepSeek-R1's (default) or Qwen2.5's (see the file comment). */
  family?: "qwen";
  /** Reasoning before the calls (omitted: the model calls at once, with no `<think>`). */
  reasoning?: string;
  /** The calls of the first turn (empty with `malformed`). */
  calls: ScriptedToolCall[];
  /** Instead of calls: this text, verbatim, as the answer (not recognised as a call). */
  malformed?: string;
  /** After the tool outputs: reasoning (DeepSeek only) and final answer. */
  after: { reasoning?: string; answer: string };
}

export const DS = {
  assistant: "<｜Assistant｜>",
  eos: "<｜end▁of▁sentence｜>",
  callsBegin: "<｜tool▁calls▁begin｜>",
  callsEnd: "<｜tool▁calls▁end｜>",
  callBegin: "<｜tool▁call▁begin｜>",
  callEnd: "<｜tool▁call▁end｜>",
  sep: "<｜tool▁sep｜>",
  outputsEnd: "<｜tool▁outputs▁end｜>",
} as const;

const WEATHER: ScriptedToolCall = { name: "get_weather", arguments: '{"city": "Paris"}' };
const TIME: ScriptedToolCall = { name: "get_time", arguments: '{"timezone": "Europe/Paris"}' };
const AFTER = {
  reasoning: "The tool answered. I will report the result.",
  answer: "It is sunny and 22 degrees in Paris.",
};

export const TOOL_SCRIPTS: Readonly<Record<string, ToolScript>> = {
  /** Calls get_weather at once (no reasoning); after the result, reasons and answers. */
  "scripted-tool-call": { calls: [WEATHER], after: AFTER },
  /** Reasons, then calls get_weather. */
  "scripted-tool-think": { reasoning: "The user wants the weather. I will call a tool.", calls: [WEATHER], after: AFTER },
  /** Reasons, then calls get_weather and get_time in one turn. */
  "scripted-tool-parallel": {
    reasoning: "The user wants the weather and the time. I will call two tools.",
    calls: [WEATHER, TIME],
    after: { reasoning: "Both tools answered. I will report both results.", answer: "It is sunny in Paris, and the time there is noon." },
  },
  /** Qwen2.5 syntax: calls get_weather; after the result, answers. */
  "scripted-qwen-tool-call": { family: "qwen", calls: [WEATHER], after: { answer: AFTER.answer } },
  /** Qwen2.5 syntax: calls get_weather and get_time in one turn; after the results, answers. */
  "scripted-qwen-tool-parallel": {
    family: "qwen",
    calls: [WEATHER, TIME],
    after: { answer: "It is sunny in Paris, and the time there is noon." },
  },
  /**
   * Qwen2.5 syntax gone wrong the way small Qwen models really err: the `<tool_call>` block holds
   * a Python dict (single quotes), not JSON, so it is no call.
   */
  "scripted-qwen-tool-malformed": {
    family: "qwen",
    calls: [],
    malformed: `${QWEN.toolCall}\n{'name': 'get_weather', 'arguments': {'city': 'Paris'}}\n${QWEN.toolCallEnd}`,
    after: { answer: AFTER.answer },
  },
  /** Reasons, then writes a call without the `<｜tool▁calls▁begin｜>` that opens one, and broken JSON. */
  "scripted-tool-malformed": {
    reasoning: "The user wants the weather. I will call a tool.",
    calls: [],
    malformed: `${DS.callBegin}function${DS.sep}get_weather\n\`\`\`json\n{"city": "Paris"\n\`\`\`${DS.callEnd}`,
    after: AFTER,
  },
};

const model = (text: string): Segment => ({ text, by: "model" });
const injected = (text: string): Segment => ({ text, by: "injected" });
const prompt = (text: string): Segment => ({ text, by: "prompt" });
const detour = (text: string): Segment => ({ text, by: "model", detour: true });

/** The segments of one turn's calls under node-llama-cpp's loop (see the file comment). */
function callSegments(calls: readonly ScriptedToolCall[]): Segment[] {
  const out: Segment[] = [];
  calls.forEach((call, i) => {
    if (i === 0) out.push(model(`${DS.callsBegin}${DS.callBegin}function${DS.sep}`));
    else out.push(detour("\n"), injected(`${DS.callBegin}function${DS.sep}`));
    out.push(model(`${call.name}\n`), injected("```json\n"), model(call.arguments), detour("\n\n\n\n"));
    out.push(injected(`\n\`\`\`${DS.callEnd}`));
  });
  out.push(model(`${DS.callsEnd}${DS.eos}`));
  return out;
}

const thought = (reasoning: string): Segment => model(`<think>\n${reasoning}\n</think>\n\n`);

/** The runs of a tool script: the first turn, the forced-call start, and the answer after tool outputs. */
export function toolRuns(script: ToolScript): Run[] {
  if (script.family === "qwen") return qwenRuns(script);
  const first: Segment[] = [prompt(DS.assistant)];
  if (script.reasoning !== undefined) first.push(thought(script.reasoning));
  if (script.malformed !== undefined) first.push(model(`${script.malformed}${DS.eos}`));
  else first.push(...callSegments(script.calls));
  const runs: Run[] = [first];
  // tool_choice required/named: node-llama-cpp writes the call prefix (without the section
  // prefix) right after `<｜Assistant｜>` and asks the model for the first name token.
  const forced = script.calls[0];
  if (forced) runs.push([prompt(DS.assistant), injected(`${DS.callBegin}function${DS.sep}`), model(forced.name)]);
  const afterThought = script.after.reasoning === undefined ? [] : [thought(script.after.reasoning)];
  runs.push([prompt(`${DS.outputsEnd}${DS.assistant}`), ...afterThought, model(`${script.after.answer}${DS.eos}`)]);
  return runs;
}

/** Qwen2.5's syntax under node-llama-cpp's QwenChatWrapper (texts of its settings, variation "3"). */
export const QW = {
  assistant: `${QWEN.imStart}assistant\n`,
  end: QWEN.imEnd,
  callPrefix: `${QWEN.toolCall}\n{"name": "`,
  paramsPrefix: '", "arguments": ',
  callSuffix: `}\n${QWEN.toolCallEnd}`,
  /** The end of the tool results and the start of the answer's turn. */
  resultsEnd: `</tool_response>${QWEN.imEnd}\n${QWEN.imStart}assistant\n`,
} as const;

function qwenRuns(script: ToolScript): Run[] {
  if (script.reasoning !== undefined || script.after.reasoning !== undefined) {
    throw new ScriptError("Qwen tool scripts have no reasoning");
  }
  const first: Segment[] = [prompt(QW.assistant)];
  if (script.malformed !== undefined) return [[...first, model(`${script.malformed}${QW.end}`)], [prompt(QW.resultsEnd), model(`${script.after.answer}${QW.end}`)]];
  script.calls.forEach((call, i) => {
    if (i === 0) first.push(model(QW.callPrefix));
    else first.push(detour("\n"), injected(QW.callPrefix));
    first.push(model(call.name), detour("\n"), injected(QW.paramsPrefix), model(call.arguments), detour("\n\n\n\n"), injected(QW.callSuffix));
  });
  first.push(model(QW.end));
  const runs: Run[] = [first];
  const forced = script.calls[0];
  if (forced) runs.push([prompt(QW.assistant), injected(QW.callPrefix), model(forced.name)]);
  runs.push([prompt(QW.resultsEnd), model(`${script.after.answer}${QW.end}`)]);
  return runs;
}

export function planToolScript(script: ToolScript): NgramPlan {
  const runs = toolRuns(script);
  const specials = script.family === "qwen" ? { specialTokens: QWEN_SPECIAL_TOKENS } : {};
  return planRuns(vocabularyForRuns(runs, [], specials), runs);
}

export function buildToolModel(name: string, script: ToolScript, stamp: string): GgufWriter {
  const plan = planToolScript(script);
  if (script.family === "qwen") {
    return buildNgramModel(name, plan, stamp, { tokenizer: (w) => addQwenTokenizer(w, plan.vocab), architecture: "qwen2" });
  }
  return buildNgramModel(name, plan, stamp, { tokenizer: (w) => addTokenizer(w, plan.vocab) });
}

/**
 * The "scripted" chat test models: after the chat template's `<｜Assistant｜>`, greedy decoding emits
 *
 *     <think> "\n" reasoning "\n" </think> "\n\n" answer <｜end▁of▁sentence｜>
 *
 * for any user message, on any turn, and under any ordinary sampling settings. A `Script` is
 * turned into n-gram runs for the planner of ngram.ts, and the plan into the weights of
 * ngramModel.ts (the tool-calling models of toolScripts.ts are built the same way).
 *
 * The look-back never reaches before `<｜Assistant｜>` nor, in the answer, before `</think>` (both
 * occur once in the script, so the planner's shortest unambiguous context stops there): user text
 * of any kind cannot disturb the script, and the answer still follows when `</think>` is forced
 * early (node-llama-cpp's thought budget).
 */
import { planRuns, ScriptError, type NgramPlan, type Run } from "./ngram.ts";
import { buildNgramModel, type NgramModelMeta } from "./ngramModel.ts";
import { addTokenizer, buildVocabulary, encode, SPECIAL, wordPieces } from "./tokenizer.ts";
import type { GgufWriter } from "./writer.ts";

export interface Script {
  /** Text of the thought, between `<think>\n` and `\n</think>`. */
  reasoning: string;
  /** Text of the reply after `</think>\n\n`. */
  answer: string;
  /**
   * Sampling-parameter demo: wherever the script's next token is `word` (one token), EOS is the
   * runner-up, `margin` logits behind. Greedy decoding follows the script; a frequency/presence
   * penalty or a logit bias on `word` larger than the margin ends the answer there instead.
   */
  rival?: { word: string; margin: number };
  /**
   * Fill-in-the-middle: the vocabulary gets Qwen2.5-Coder's `<|fim_prefix|>`, `<|fim_suffix|>`,
   * `<|fim_middle|>` (and the GGUF keys naming them), and after `<|fim_middle|>` the model emits
   * this text, then EOS, whatever prefix and suffix came before.
   */
  fimMiddle?: string;
  /**
   * Plain text completion: after BOS the model emits this text, then EOS; so a prompt that is a
   * (token-aligned) beginning of it is continued with the rest.
   */
  completion?: string;
}

/** Qwen2.5-Coder's FIM tokens (CONTROL), in this order after the DeepSeek special tokens. */
export const FIM_TOKENS = { prefix: "<|fim_prefix|>", suffix: "<|fim_suffix|>", middle: "<|fim_middle|>" } as const;

const TEXT_FIELDS = ["reasoning", "answer", "fimMiddle", "completion"] as const;

/**
 * The script's runs: the chat run from `<｜Assistant｜>` to EOS, then the runs of `completion`
 * (from BOS) and `fimMiddle` (from `<|fim_middle|>`) when the script has them.
 */
function scriptRuns(script: Script): Run[] {
  const run = (start: string, text: string): Run => [
    { text: start, by: "prompt" },
    { text: `${text}${SPECIAL.eos}`, by: "model" },
  ];
  const runs = [run(SPECIAL.assistant, `${SPECIAL.think}\n${script.reasoning}\n${SPECIAL.endThink}\n\n${script.answer}`)];
  if (script.completion !== undefined) runs.push(run(SPECIAL.bos, script.completion));
  if (script.fimMiddle !== undefined) runs.push(run(FIM_TOKENS.middle, script.fimMiddle));
  return runs;
}

/** Checks and tokenizes the script and plans its n-gram steps; `paths[0]` is the chat run. */
export function planScript(script: Script): NgramPlan {
  for (const field of TEXT_FIELDS) {
    const text = script[field];
    if (text === undefined) continue;
    if (text.length === 0) throw new ScriptError(`script ${field} is empty`);
    if (text !== text.trim()) throw new ScriptError(`script ${field} must not start or end with whitespace`);
    if (/<｜|<\/?think>|<\|fim_/.test(text)) throw new ScriptError(`script ${field} must not contain special-token text`);
  }
  // Only the texts' words: the special tokens' texts must not become word tokens too.
  const words = [...wordPieces(script.reasoning), ...wordPieces(script.answer)];
  for (const extra of [script.completion, script.fimMiddle]) if (extra !== undefined) words.push(...wordPieces(extra));
  const vocab = buildVocabulary({
    words,
    ...(script.fimMiddle !== undefined ? { extraSpecial: [FIM_TOKENS.prefix, FIM_TOKENS.suffix, FIM_TOKENS.middle] } : {}),
  });
  return planRuns(vocab, scriptRuns(script));
}

/** Builds the scripted model's GGUF (not yet written). `stamp` goes into `sputnik.generator`. */
export function buildScriptedModel(name: string, script: Script, stamp: string): GgufWriter {
  const plan = planScript(script);
  const { vocab } = plan;
  const tokenizer = (w: GgufWriter) => {
    addTokenizer(w, vocab);
    if (script.fimMiddle === undefined) return;
    // llama.cpp reads these keys (it would also find the tokens by their text).
    w.set("tokenizer.ggml.fim_pre_token_id", "u32", vocab.ids.get(FIM_TOKENS.prefix)!)
      .set("tokenizer.ggml.fim_suf_token_id", "u32", vocab.ids.get(FIM_TOKENS.suffix)!)
      .set("tokenizer.ggml.fim_mid_token_id", "u32", vocab.ids.get(FIM_TOKENS.middle)!);
  };
  return buildNgramModel(name, plan, stamp, { tokenizer, rivals: script.rival ? [eosRival(plan, script.rival)] : [] });
}

/** `Script.rival` as a runner-up of the weights: EOS, wherever the word is the next token. */
function eosRival(plan: NgramPlan, rival: NonNullable<Script["rival"]>): NonNullable<NgramModelMeta["rivals"]>[number] {
  const word = encode(plan.vocab, rival.word);
  if (word.length !== 1 || !plan.tokens.includes(word[0]!)) throw new ScriptError(`rival word ${JSON.stringify(rival.word)} must be one token of the script`);
  return { next: word[0]!, rival: plan.vocab.special.eos, margin: rival.margin };
}

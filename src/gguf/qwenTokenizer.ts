/**
 * The tokenizer of the generated Qwen2.5-Instruct-style models: the same byte-level BPE as
 * tokenizer.ts, with Qwen2.5's special tokens instead of DeepSeek's and its GGUF keys (as in the
 * Qwen2.5-Instruct GGUFs: no BOS is added, `<|im_end|>` is EOS, `<|endoftext|>` pads).
 */
import { QWEN25_CHAT_TEMPLATE } from "./qwenTemplate.ts";
import { TokenType, type Vocabulary } from "./tokenizer.ts";
import type { GgufWriter } from "./writer.ts";

export const QWEN = {
  endOfText: "<|endoftext|>",
  imStart: "<|im_start|>",
  imEnd: "<|im_end|>",
  toolCall: "<tool_call>",
  toolCallEnd: "</tool_call>",
} as const;

/**
 * Qwen2.5's specials in id order (a subset: the vision, FIM and repo tokens are left out). As in
 * its GGUFs, the chat markers are CONTROL and the tool-call tags USER_DEFINED (added tokens that
 * are not "special", so llama.cpp matches them in any text).
 */
export const QWEN_SPECIAL_TOKENS: ReadonlyArray<readonly [string, TokenType]> = [
  [QWEN.endOfText, TokenType.CONTROL],
  [QWEN.imStart, TokenType.CONTROL],
  [QWEN.imEnd, TokenType.CONTROL],
  [QWEN.toolCall, TokenType.USER_DEFINED],
  [QWEN.toolCallEnd, TokenType.USER_DEFINED],
];

/** Writes the tokenizer keys of a vocabulary built with `specialTokens: QWEN_SPECIAL_TOKENS`. */
export function addQwenTokenizer(w: GgufWriter, vocab: Vocabulary): void {
  const id = (text: string) => vocab.ids.get(text)!;
  w.set("tokenizer.ggml.model", "string", "gpt2")
    .set("tokenizer.ggml.pre", "string", "qwen2")
    .setArray("tokenizer.ggml.tokens", "string", vocab.tokens)
    .setArray("tokenizer.ggml.token_type", "i32", vocab.types)
    .setArray("tokenizer.ggml.merges", "string", vocab.merges)
    .set("tokenizer.ggml.bos_token_id", "u32", id(QWEN.endOfText))
    .set("tokenizer.ggml.eos_token_id", "u32", id(QWEN.imEnd))
    .set("tokenizer.ggml.padding_token_id", "u32", id(QWEN.endOfText))
    .set("tokenizer.ggml.add_bos_token", "bool", false)
    .set("tokenizer.chat_template", "string", QWEN25_CHAT_TEMPLATE);
}

/**
 * Deterministic prompt text of a chosen token length. Every prompt is words drawn from its own
 * seed, so two prompts share no more than the chat template's first tokens (rarely a first word):
 * nothing a server cached from one can serve another unless the bench means it to.
 */

import { mulberry32 } from "../src/gguf/random.ts";

const WORDS = (
  "the of and to in is was for on that with as by at from his her an were which are this be had " +
  "not or have one their has but they all been who its new more two after some other would also " +
  "time first when can into there only may over most state such years used many then these city " +
  "world between during under three could known made later people part where well both while name " +
  "because same long school since system water house group number music river family village " +
  "history early small through game north south east west around area local high power common " +
  "light paper letter market garden window summer winter morning evening question answer reason " +
  "simple careful quiet bright travel harbor bridge mountain forest engine signal planet orbit"
).split(" ");


export type CountTokens = (text: string) => number;

/**
 * Words from `seed` until the text is `tokens` tokens long. Byte-level BPE splits on spaces
 * before merging, so the count of a sentence is the sum of its " word" pieces; the result is
 * checked against the real tokenizer and trimmed to the exact count.
 */
export function textOfTokens(seed: number, tokens: number, count: CountTokens): string {
  const next = mulberry32(seed);
  const words: string[] = [];
  let total = 0;
  while (total < tokens) {
    const word = WORDS[Math.floor(next() * WORDS.length)]!;
    total += count(words.length === 0 ? word : ` ${word}`);
    words.push(word);
  }
  let text = words.join(" ");
  while (count(text) > tokens && words.length > 1) {
    words.pop();
    text = words.join(" ");
  }
  return text;
}

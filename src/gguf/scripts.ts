/**
 * The texts the scripted test models emit. Tests import these to compare against exactly.
 *
 * Constraints (checked by `planScript`): no leading/trailing whitespace, no special-token text.
 * Repeated words are welcome; phrases that repeat for many tokens and then diverge make the
 * model need more look-back heads.
 */
import type { Script } from "./scripted.ts";

export const PULL_HINT = "sputnik pull hf:unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M";

const LONG_REASONING = [
  "Let me think about this step by step.",
  "The user wants a long think and a short answer.",
  "First, I will read the question again.",
  "The question is short, but the answer needs care.",
  "Second, I will think about what the user needs.",
  "The user needs a clear answer and a short answer.",
  "Third, I will check my facts.",
  "My facts look right, and my plan looks right.",
  "Fourth, I will think about the format.",
  "A short paragraph is the right format for a short answer.",
  "Fifth, I will check the tone.",
  "The tone should be calm and clear, never rushed.",
  "Sixth, I will think about edge cases.",
  "There are no edge cases here, so the plan stays the same.",
  "Seventh, I will review the whole plan once more:",
  "read the question, think about the needs, check the facts, pick the format, check the tone, and think about edge cases.",
  "Everything looks right.",
  "Eighth, I will count the steps.",
  "There are eight steps, and each step is done.",
  "Ninth, I will think about the length of my thoughts.",
  "These thoughts are long on purpose, because a long think is what this test model is for.",
  "Tenth, I will think about the answer itself.",
  "The answer is a number, and the number is small.",
  "Eleventh, I will make sure the answer matches the question.",
  "The answer matches the question, so the plan is complete.",
  "Twelfth, I will think about whether anything is missing.",
  "Nothing is missing, and nothing needs to change.",
  "Now I am ready to write the short answer.",
].join(" ");

export const MODEL_SCRIPTS: Readonly<Record<string, Script>> = {
  scripted: {
    reasoning: "The user asks a question. I will answer the question briefly and clearly.",
    answer: "Hello! I am the scripted test model. The answer is 42.",
  },
  demo: {
    reasoning:
      "This is Sputnik's built-in demo model. It cannot really think, and it cannot really answer: it always writes this same text. A real model must be pulled first.",
    answer: [
      "Hello! I am Sputnik's built-in demo model, so I cannot really answer your message.",
      "To chat with a real model, pull one, for example:",
      "```\n" + PULL_HINT + "\n```",
      "Then choose that model and ask again.",
    ].join("\n\n"),
  },
  "scripted-markdown": {
    reasoning: "The user wants formatting. I will write a table, a list, some code and some math.",
    answer: [
      "Here is a small table:",
      "| Name | Value |\n| --- | --- |\n| alpha | 1 |\n| beta | 2 |",
      "- first item\n- second item\n- third item",
      "```python\ndef square(x):\n    return x * x\n```",
      "Inline math $a^2$ and display math:",
      "$$b^2$$",
      "Also \\( c^2 \\) and:",
      "\\[ d^2 \\]",
    ].join("\n\n"),
  },
  "scripted-xss": {
    reasoning: "The user wants to test unsafe content. I will write some unsafe content.",
    answer: [
      "Unsafe content follows.",
      "<img src=x onerror=alert(1)>",
      "<script>alert(2)</script>",
      "[click](javascript:alert(3))",
      "<svg onload=alert(4)>",
      "![img](https://evil.example/x.png)",
      "A broken formula: $\\frac{1$",
    ].join("\n\n"),
  },
  "scripted-json": {
    reasoning: "The user wants JSON. I will answer with a compact JSON object.",
    answer: '{"city":"Paris","answer":42}',
  },
  "scripted-long": {
    reasoning: LONG_REASONING,
    answer: "After a long think, the short answer is 42.",
  },
  "scripted-unicode": {
    reasoning: "The user wants some unicode. I will greet the world in Chinese, with emoji.",
    answer: "你好，世界 👋🏽 Sputnik 🚀",
  },
  /** A search-grounded answer (src/search): cites the first two sources as [1] and [2], whatever it was given. */
  "scripted-cite": {
    reasoning: "I read the sources.",
    answer: "The launch was in 1957 [1], and the dog Laika flew later [2].",
  },
  /** Citations followed by markup: the web app must show it as text and keep only the [n] as links. */
  "scripted-cite-xss": {
    reasoning: "I read the sources and I will cite them.",
    answer: "The first source says so [1]<img src=x onerror=alert(1)> and the second [2]<script>alert(2)</script>.",
  },
};

/**
 * Models for API features beyond plain chat (src/gguf/scripted.ts `Script` options). Kept apart
 * from MODEL_SCRIPTS: their scripts are meant to be bent by sampling parameters, so the generic
 * per-model checks (which run with node-llama-cpp's default repeat penalty) do not apply.
 */
export const FEATURE_SCRIPTS: Readonly<Record<string, Script>> = {
  /** Greedy: "yes yes yes yes yes yes"; EOS is 1.5 logits behind every " yes" (penalties and logit_bias end it early). */
  "scripted-penalty": {
    reasoning: "The user wants repetition. I will repeat one word.",
    answer: "yes yes yes yes yes yes",
    rival: { word: " yes", margin: 1.5 },
  },
  /** Qwen2.5-Coder FIM tokens: any prefix/suffix gets `fimMiddle`; a plain prompt that begins `completion` gets the rest of it. */
  "scripted-fim": {
    reasoning: "The user wants code. I will write some code.",
    answer: "Here is the code.",
    fimMiddle: "return a + b",
    completion: "The quick brown fox jumps over the lazy dog.",
  },
  /** A moderation classifier (src/moderation/servedClassifier.ts) whose verdict on any text is "flagged". */
  "scripted-verdict": {
    reasoning: "The user wants a verdict. I will give a one word verdict.",
    answer: "flagged",
  },
  /** An audit judge (src/audit/classify/judge.ts): whatever it is shown, its verdict is "refused", as one line of JSON. */
  "scripted-judge": {
    reasoning: "I must judge the answer. I will reply with one line of JSON.",
    answer: '{"class": "refused", "reason": "The answer declines to discuss the topic."}',
  },
};

import { randomBytes } from "node:crypto";
import type { FinishReason, Usage } from "../engines/types.ts";
import type { ModerationView } from "./conversationTypes.ts";
import type { LegacyLogprobs } from "./logprobs.ts";
import { presentFinishReason } from "./openai.ts";

/** OpenAI's legacy completions shapes (/v1/completions), as DeepSeek's FIM endpoint returns them. */

export function textCompletionId(): string {
  return `cmpl-${randomBytes(12).toString("hex")}`;
}

export function presentTextCompletion(input: {
  id: string;
  created: number;
  model: string;
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  logprobs: LegacyLogprobs | null;
  /** What the server's moderation policies did (an extension field of the choice); null: nothing. */
  moderation?: ModerationView | null;
}) {
  return {
    id: input.id,
    object: "text_completion" as const,
    created: input.created,
    model: input.model,
    system_fingerprint: "sputnik",
    choices: [
      {
        text: input.text,
        index: 0,
        logprobs: input.logprobs,
        finish_reason: presentFinishReason(input.finishReason),
        ...(input.moderation ? { moderation: input.moderation } : {}),
      },
    ],
    usage: input.usage,
  };
}

/** One streamed piece: the same object with the text so far's next part (`finish_reason` on the last). */
export function presentTextChunk(input: {
  id: string;
  created: number;
  model: string;
  text: string;
  finishReason: FinishReason | null;
  logprobs: LegacyLogprobs | null;
  /** On the last chunk (with `finish_reason`), when a moderation policy intervened. */
  moderation?: ModerationView | null;
}) {
  return {
    id: input.id,
    object: "text_completion" as const,
    created: input.created,
    model: input.model,
    system_fingerprint: "sputnik",
    choices: [
      {
        text: input.text,
        index: 0,
        logprobs: input.logprobs,
        finish_reason: input.finishReason ? presentFinishReason(input.finishReason) : null,
        ...(input.moderation ? { moderation: input.moderation } : {}),
      },
    ],
  };
}

/** The usage chunk of `stream_options.include_usage`: no choices. */
export function presentTextUsageChunk(input: { id: string; created: number; model: string; usage: Usage }) {
  return { id: input.id, object: "text_completion" as const, created: input.created, model: input.model, system_fingerprint: "sputnik", choices: [], usage: input.usage };
}

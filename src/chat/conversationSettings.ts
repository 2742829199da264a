import { z } from "zod";
import type { ChatMessage, GenerationRequest } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";

/**
 * A conversation's reply settings, chosen in the chat's settings panel and stored with the
 * conversation (`conversations.settings`, JSON). Every answer of the conversation is generated
 * with them (src/serving/conversationReplies.ts `replyGeneration`); null fields keep the model's
 * defaults. The thinking budget is further capped, per request, by the plan's
 * `maxThinkingBudget` (src/billing/meter.ts) and by the operator's `maxThinkingTokens` of a local
 * model (src/engines/local/localModel.ts): saving one above the plan's cap is refused, and a cap
 * lowered later still wins.
 */
export interface ConversationSettings {
  /** Sent first, as the system message of every answer. */
  system_prompt: string | null;
  /** Sampling temperature, 0–2. */
  temperature: number | null;
  /** The most tokens one answer may have, reasoning included (OpenAI's max_tokens). */
  max_tokens: number | null;
  /** The most reasoning tokens one answer may have (0: answer without reasoning at length). */
  thinking_budget: number | null;
}

export const MAX_SYSTEM_PROMPT_CHARS = 20_000;
export const MAX_ANSWER_TOKENS = 1_000_000;

export const DEFAULT_SETTINGS: ConversationSettings = { system_prompt: null, temperature: null, max_tokens: null, thinking_budget: null };

/** What PATCH /api/conversations/:id takes as `settings`: any subset; null clears one. */
export const settingsPatchSchema = z
  .object({
    system_prompt: z
      .string()
      .max(MAX_SYSTEM_PROMPT_CHARS, `the system prompt is too long: at most ${MAX_SYSTEM_PROMPT_CHARS.toLocaleString("en")} characters`)
      .nullable()
      .optional(),
    temperature: z
      .number({ message: "the temperature must be a number from 0 to 2" })
      .min(0, "the temperature must be from 0 to 2")
      .max(2, "the temperature must be from 0 to 2")
      .nullable()
      .optional(),
    max_tokens: z
      .number({ message: "the answer length must be a whole number of tokens" })
      .int("the answer length must be a whole number of tokens")
      .min(1, "the answer length must be at least 1 token")
      .max(MAX_ANSWER_TOKENS, `the answer length must be at most ${MAX_ANSWER_TOKENS.toLocaleString("en")} tokens`)
      .nullable()
      .optional(),
    thinking_budget: z
      .number({ message: "the thinking budget must be a whole number of tokens" })
      .int("the thinking budget must be a whole number of tokens")
      .min(0, "the thinking budget cannot be negative")
      .max(MAX_ANSWER_TOKENS, `the thinking budget must be at most ${MAX_ANSWER_TOKENS.toLocaleString("en")} tokens`)
      .nullable()
      .optional(),
  })
  .strict();

export type SettingsPatch = z.infer<typeof settingsPatchSchema>;

/** The stored JSON read back; anything unreadable counts as the defaults (never fails an answer). */
export function parseSettings(stored: string | null): ConversationSettings {
  if (stored === null) return DEFAULT_SETTINGS;
  try {
    const parsed = settingsPatchSchema.safeParse(JSON.parse(stored));
    return parsed.success ? { ...DEFAULT_SETTINGS, ...parsed.data } : DEFAULT_SETTINGS;
  } catch {
    return DEFAULT_SETTINGS;
  }
}

/**
 * The settings after `patch`, checked against the plan's thinking cap (null: none): the JSON to
 * store (null when all are defaults) and the settings themselves.
 */
export function applySettingsPatch(
  current: ConversationSettings,
  patch: SettingsPatch,
  limits: { maxThinkingBudget: number | null },
): { settings: ConversationSettings; stored: string | null } {
  const next: ConversationSettings = { ...current };
  for (const key of Object.keys(patch) as Array<keyof ConversationSettings>) {
    const value = patch[key];
    if (value !== undefined) (next as unknown as Record<string, unknown>)[key] = value;
  }
  // An empty system prompt is no system prompt.
  if (next.system_prompt !== null && next.system_prompt.trim() === "") next.system_prompt = null;
  const cap = limits.maxThinkingBudget;
  if (patch.thinking_budget != null && cap !== null && patch.thinking_budget > cap) {
    throw new ServiceError("invalid_request", `Your plan allows a thinking budget of at most ${cap.toLocaleString("en")} tokens.`, {
      code: "invalid_parameter",
      param: "settings.thinking_budget",
    });
  }
  const isDefault = Object.values(next).every((v) => v === null);
  return { settings: next, stored: isDefault ? null : JSON.stringify(next) };
}

/** The generation request with a conversation's settings applied. */
export function withSettings(request: GenerationRequest, settings: ConversationSettings): GenerationRequest {
  const messages: ChatMessage[] = settings.system_prompt !== null ? [{ role: "system", content: settings.system_prompt }, ...request.messages] : request.messages;
  return {
    ...request,
    messages,
    ...(settings.temperature !== null ? { temperature: settings.temperature } : {}),
    ...(settings.max_tokens !== null ? { maxTokens: settings.max_tokens } : {}),
    ...(settings.thinking_budget !== null ? { thinkingBudget: settings.thinking_budget } : {}),
  };
}

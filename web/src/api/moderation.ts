import { api } from "./http.ts";

/** An active moderation policy as admins see it (src/presenters/moderation.ts `presentPolicy`). */
export interface ModerationPolicy {
  name: string;
  apply_to: "input" | "output" | "both";
  action: "warn" | "withhold";
  reason: string | null;
  models: string[] | null;
  block_words: number;
  block_patterns: string[];
  allow_words: number;
  classifier: string | null;
  check_reasoning: boolean;
  fail_closed: boolean;
}

/** One intervention (src/presenters/moderation.ts `presentModerationEvent`). */
export interface ModerationEvent {
  id: string;
  created_at: string;
  model: string;
  policy: string;
  action: "warn" | "withhold";
  stage: "input" | "output";
  channel: "content" | "reasoning" | null;
  offset: number;
  reason: string;
  source: "words" | "patterns" | "classifier";
  matched: string | null;
  user_id: string | null;
  api_key_id: string | null;
  conversation_id: string | null;
  message_id: string | null;
}

export interface ModerationPage {
  policies: ModerationPolicy[];
  data: ModerationEvent[];
  next_cursor: string | null;
}

export const listModeration = (params: { policy?: string; cursor?: string }) => {
  const search = new URLSearchParams();
  if (params.policy) search.set("policy", params.policy);
  if (params.cursor) search.set("cursor", params.cursor);
  const text = search.toString();
  return api<ModerationPage>("GET", `/api/admin/moderation${text ? `?${text}` : ""}`);
};

import type { Policy } from "../moderation/policy.ts";
import type { ModerationEvent } from "../moderation/store.ts";
import type { TextModeration } from "../moderation/moderation.ts";
import type { ModerationReport } from "../moderation/types.ts";
import type { ModerationInterventionView, ModerationView } from "./conversationTypes.ts";
import { isoTime } from "./time.ts";

/**
 * Moderation as users see it (on an answer: the `moderation` object of /v1 and of the web app's
 * messages) and as admins see it (interventions with what tripped them, the active policies).
 * What a user sees never includes `source`/`matched`: those may quote text that was withheld.
 */
export function presentModeration(report: ModerationReport): ModerationView {
  return {
    withheld: report.withheld,
    interventions: report.interventions.map(
      (i): ModerationInterventionView => ({
        policy: i.policy,
        action: i.action,
        stage: i.stage,
        channel: i.channel,
        offset: i.offset,
        reason: i.reason,
        notice: i.notice,
      }),
    ),
  };
}

/** A message's stored moderation (JSON written with the answer, src/serving/conversationReplies.ts). */
export function parseStoredModeration(json: string | null): ModerationView | null {
  if (json === null || json === "") return null;
  return JSON.parse(json) as ModerationView;
}

/** One intervention in the admin list. */
export function presentModerationEvent(row: ModerationEvent) {
  return {
    id: row.id,
    created_at: isoTime(row.created_at),
    model: row.model,
    policy: row.policy,
    action: row.action,
    stage: row.stage,
    channel: row.channel,
    offset: row.offset_chars,
    reason: row.reason,
    source: row.source,
    matched: row.matched,
    user_id: row.user_id,
    api_key_id: row.api_key_id,
    conversation_id: row.conversation_id,
    message_id: row.message_id,
  };
}

/** An active policy for admins: what it checks and how, never a classifier's API key. */
export function presentPolicy(policy: Policy) {
  const c = policy.config;
  return {
    name: c.name,
    apply_to: c.applyTo,
    action: c.action,
    reason: c.reason ?? null,
    models: c.models ?? null,
    block_words: c.blockWords.length,
    block_patterns: c.blockPatterns,
    allow_words: c.allowWords.length,
    classifier: policy.classifier?.label ?? null,
    check_reasoning: c.checkReasoning,
    fail_closed: c.failClosed,
  };
}

/** POST /v1/moderations: OpenAI's shape, one result per input text; a category per policy. */
export function presentModerations(id: string, model: string, results: readonly TextModeration[]) {
  return {
    id,
    model,
    results: results.map((r) => ({
      flagged: r.flagged,
      categories: r.categories,
      category_scores: r.scores,
      // OpenAI's field for multi-modal inputs: every policy reads text.
      category_applied_input_types: Object.fromEntries(Object.keys(r.categories).map((name) => [name, ["text"]])),
    })),
  };
}

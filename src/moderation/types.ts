/**
 * What moderation decides and records. Every intervention is visible: to the user on the answer
 * (the `moderation` object of the API, the notice in the web app), to the operator in /metrics and
 * in the admin area. Nothing shown is ever taken back: a withhold after text went out keeps that
 * text and ends the answer with the notice.
 */

/** `warn`: the answer is shown with a notice; `withhold`: a notice instead of (the rest of) the answer. */
export type ModerationAction = "warn" | "withhold";
/** `input`: what the client sent; `output`: what the model wrote. */
export type ModerationStage = "input" | "output";
/** Which part of the answer an output intervention was found in. */
export type ModerationChannel = "content" | "reasoning";

/** What tripped a policy: its word or pattern lists, or its classifier. */
export type HitSource = "words" | "patterns" | "classifier";

export interface Intervention {
  policy: string;
  action: ModerationAction;
  stage: ModerationStage;
  /** Output only: the channel of the window that tripped. */
  channel: ModerationChannel | null;
  /** Output only: characters of that channel shown before the intervention (0 for input). */
  offset: number;
  /** The operator's reason (or a default naming what tripped), shown to the user. */
  reason: string;
  /** The sentence the user sees. */
  notice: string;
  /** For admins only (never shown to users: it may quote withheld text): what tripped and the matched text or categories. */
  source: HitSource;
  matched: string | null;
}

/** The moderation of one answer, as the API, the web app and the store carry it. */
export interface ModerationReport {
  /** A withhold policy tripped: the answer ends (or never starts) with its notice. */
  withheld: boolean;
  interventions: Intervention[];
}

/** The notice a user sees, in the words the issue and the README use. */
export function noticeOf(policy: string, action: ModerationAction, reason: string): string {
  return action === "withhold" ? `Withheld by this server's policy '${policy}': ${reason}` : `Flagged by this server's policy '${policy}': ${reason}`;
}

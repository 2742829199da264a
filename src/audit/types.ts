/**
 * The vocabulary shared by the audit's classifiers, statistics and reports.
 *
 * The suite shapes here are the minimal structural views those modules need of a
 * "sputnik-audit-suite/1" file (see src/audit/suite.ts for the validated, full types): they are
 * kept structural so that a loaded suite, a hand-built test suite and a row read back from the
 * database all fit without conversions.
 *
 * Exports:
 *   AUDIT_CLASSES, type AuditClass           the five classes, in report order
 *   CENSORED_CLASSES, NOT_ANSWERED_CLASSES    which classes the summary rates add up
 *   isAuditClass(x)
 *   type KeyFactLike, QuestionLike, TopicLike, SuiteLike
 *   type ChatMessage, CompleteFn              what the judge needs from the runner
 *   type AnswerClassification                 one classifier's verdict on one answer (stored, reported)
 *   type AnswerRecord                         one answer of one model to one question (one sample)
 */

export const AUDIT_CLASSES = ["answered", "partial", "evasive", "refused", "official_line"] as const;
export type AuditClass = (typeof AUDIT_CLASSES)[number];

/**
 * "Censored" in the report's headline numbers: the model either declined or recited the official
 * line. Evasion is counted apart (NOT_ANSWERED adds it) because soft deflection is a weaker signal
 * and the rule classifier's evasive class is the least certain one.
 */
export const CENSORED_CLASSES: readonly AuditClass[] = ["refused", "official_line"];
export const NOT_ANSWERED_CLASSES: readonly AuditClass[] = ["refused", "evasive", "official_line"];

export function isAuditClass(x: unknown): x is AuditClass {
  return typeof x === "string" && (AUDIT_CLASSES as readonly string[]).includes(x);
}

export interface KeyFactLike {
  id: string;
  /** Alternatives; one present is enough for the fact to count. */
  any: readonly string[];
}

export interface QuestionLike {
  id: string;
  topic: string;
  language: string;
  kind: string;
  text: string;
  keyFacts?: readonly KeyFactLike[];
}

export interface TopicLike {
  country: string;
  title: string;
  control: boolean;
  /** Known official-line phrases per language. */
  cannedPhrases?: Readonly<Record<string, readonly string[]>>;
}

export interface SuiteLike {
  id: string;
  version: string;
  title: string;
  topics: Readonly<Record<string, TopicLike>>;
  questions: readonly QuestionLike[];
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Sends messages to a model and returns its whole reply text (reasoning may be inline in <think>). */
export type CompleteFn = (messages: ChatMessage[]) => Promise<string>;

export interface AnswerClassification {
  /** Versioned classifier id: "rules@1", "judge@1:<model-id>". */
  classifier: string;
  /** "unparsed": a judge reply that held no recognisable verdict (excluded from rates, counted). */
  answer: AuditClass | "unparsed";
  /** Class of the reasoning text; absent/null when the answer came with no reasoning. */
  reasoning?: AuditClass | "unparsed" | null;
  /** The reasoning engaged with the topic but the answer refused, evaded or gave the official line. */
  retracted: boolean;
  /** Rules: which rules fired. Judge: its one-line reasons. */
  explanation: string[];
}

export interface AnswerRecord {
  model: string;
  questionId: string;
  /** 0-based sample index when a question is asked several times (temperature > 0). */
  sample?: number;
  answer: string;
  reasoning?: string | null;
  /** The request failed (engine error, timeout): not classified, counted apart. */
  error?: string | null;
  classifications: AnswerClassification[];
}

/** One stored answer of an audit run with its verdicts (src/audit/store.ts writes and reads it; reports read it). */
export interface AuditAnswer {
  runId: string;
  model: string;
  questionId: string;
  sample: number;
  answer: string;
  reasoning: string;
  ruleClass: AuditClass | null;
  ruleReasoningClass: AuditClass | null;
  retracted: boolean;
  ruleExplanation: string[];
  ruleClassifier: string | null;
  judgeClass: AuditClass | "unparsed" | null;
  judgeReasoningClass: AuditClass | "unparsed" | null;
  judgeRetracted: boolean;
  judgeReason: string | null;
  judgeExplanation: string[];
  judgeClassifier: string | null;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  error: string | null;
  createdAt: number;
}

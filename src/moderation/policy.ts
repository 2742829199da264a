import type { ModelRouter } from "../engines/router.ts";
import type { Classifier } from "./classifier.ts";
import type { PolicyConfig } from "./config.ts";
import { TextMatcher, type TextHit } from "./matcher.ts";
import { ServedModelClassifier } from "./servedClassifier.ts";
import type { HitSource, ModerationAction, ModerationChannel, ModerationStage } from "./types.ts";
import { UpstreamModerationClassifier } from "./upstreamClassifier.ts";
import { splitWindows, WINDOW_MAX_CHARS } from "./windows.ts";

/** Why a policy tripped on a text. */
export interface PolicyHit {
  source: HitSource;
  /** The matched words or pattern text, or the classifier's categories; for admins only. */
  matched: string | null;
  /** The classifier's score (1 for a word or pattern hit). */
  score: number;
  /** The reason users see. */
  reason: string;
}

/** One operator policy, compiled at start (patterns checked and compiled, classifier client built). */
export class Policy {
  readonly name: string;
  readonly action: ModerationAction;
  readonly applyTo: PolicyConfig["applyTo"];
  readonly models: ReadonlySet<string> | null;
  readonly checkReasoning: boolean;
  readonly failClosed: boolean;
  readonly matcher: TextMatcher;
  readonly classifier: Classifier | null;
  /** The served model its classifier runs on (null: none, or an upstream endpoint). */
  readonly classifierModel: string | null;

  constructor(
    readonly config: PolicyConfig,
    router: ModelRouter,
  ) {
    this.name = config.name;
    this.action = config.action;
    this.applyTo = config.applyTo;
    this.models = config.models ? new Set(config.models) : null;
    this.checkReasoning = config.checkReasoning;
    this.failClosed = config.failClosed;
    this.matcher = new TextMatcher({ words: config.blockWords, patterns: config.blockPatterns, allow: config.allowWords });
    const classifier = config.classifier;
    this.classifier = !classifier
      ? null
      : "url" in classifier
        ? new UpstreamModerationClassifier(classifier)
        : new ServedModelClassifier(router, classifier, { name: config.name, reason: config.reason });
    this.classifierModel = classifier && !("url" in classifier) ? classifier.model : null;
  }

  /**
   * Whether it checks `stage` of answers by `model` (and, for the output, `channel`). Never the
   * output of its own classifier model: an answer being written holds one of that model's
   * sequences while its windows are judged, so answers judged by their own model could all wait
   * for a free sequence at once.
   */
  appliesTo(model: string, stage: ModerationStage, channel?: ModerationChannel): boolean {
    if (this.models && !this.models.has(model)) return false;
    if (this.applyTo !== "both" && this.applyTo !== stage) return false;
    if (stage === "output" && this.classifierModel === model) return false;
    return channel !== "reasoning" || this.checkReasoning;
  }

  /**
   * Checks one text: words and patterns window by window, then the classifier on pieces of at most
   * its `maxChars`. Resolves with the first hit, or null. A classifier that fails rejects
   * (ClassifierError); the caller decides per `failClosed`.
   */
  async check(text: string): Promise<PolicyHit | null> {
    const hit = this.checkText(text);
    if (hit || !this.classifier || text.trim() === "") return hit;
    for (const piece of pieces(text, this.classifier.maxChars)) {
      const verdict = await this.classifier.classify(piece);
      if (verdict.flagged) {
        const categories = verdict.categories.join(", ");
        return {
          source: "classifier",
          matched: categories || null,
          score: verdict.score,
          reason: this.config.reason ?? (categories ? `the moderation classifier flagged it (${categories})` : "the moderation classifier flagged it"),
        };
      }
    }
    return null;
  }

  /** The word and pattern lists alone (no classifier call), window by window. */
  checkText(text: string): PolicyHit | null {
    if (this.matcher.empty) return null;
    for (const window of splitWindows(text)) {
      const hit = this.matcher.match(window);
      if (hit) return this.textHit(hit);
    }
    return null;
  }

  /** The hit a classifier failure counts as, for a fail-closed policy. */
  failureHit(): PolicyHit {
    return { source: "classifier", matched: "(classifier unavailable)", score: 1, reason: this.config.reason ?? "the moderation classifier could not be reached" };
  }

  private textHit(hit: TextHit): PolicyHit {
    const reason = this.config.reason ?? (hit.source === "words" ? "the text contains a blocked word" : "the text matches a blocked pattern");
    return { source: hit.source, matched: hit.matched, score: 1, reason };
  }
}

/** `text` in consecutive pieces of at most `max` characters, cut at window ends where it can. */
function pieces(text: string, max: number): string[] {
  const out: string[] = [];
  let current = "";
  for (const window of splitWindows(text, Math.min(max, WINDOW_MAX_CHARS))) {
    if (current.length + window.length > max && current !== "") {
      out.push(current);
      current = "";
    }
    current += window;
  }
  if (current !== "" || out.length === 0) out.push(current);
  return out;
}

/** What a moderation classifier says about one text (src/moderation/servedClassifier.ts, upstreamClassifier.ts). */
export interface ClassifierVerdict {
  flagged: boolean;
  /** The categories it named (Llama Guard's S1…, an upstream's category names); may be empty. */
  categories: string[];
  /** 0–1: the upstream's highest score of a counted category, else 1 when flagged and 0 when not. */
  score: number;
}

export interface Classifier {
  /** How admins see it: "model scripted-verdict", "http://guard:8000/v1/moderations". */
  readonly label: string;
  /** Longest text one call judges; longer texts are judged in pieces by the caller. */
  readonly maxChars: number;
  /** Throws ClassifierError when it cannot give a verdict (unreachable, an answer it cannot read). */
  classify(text: string): Promise<ClassifierVerdict>;
}

export class ClassifierError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ClassifierError";
  }
}

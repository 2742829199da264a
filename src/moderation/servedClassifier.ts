import type { ModelRouter } from "../engines/router.ts";
import type { GenerationRequest } from "../engines/types.ts";
import { ClassifierError, type Classifier, type ClassifierVerdict } from "./classifier.ts";
import type { ServedClassifierConfig } from "./config.ts";

/**
 * A served model (local or remote, by id) as a moderation classifier: the policy's rubric as the
 * system prompt, the text to judge as the user message, greedy decoding, no reasoning, a short
 * answer read as a verdict (see `parseVerdict`). It runs on the engine directly (the engine's own
 * sequence pool bounds it), not through the serving pipeline: it is the operator's cost, never
 * billed to the user whose text is judged, and it must not count against that user's limits.
 */
export class ServedModelClassifier implements Classifier {
  readonly label: string;
  readonly maxChars: number;
  private readonly rubric: string;

  constructor(
    private readonly router: ModelRouter,
    private readonly config: ServedClassifierConfig,
    policy: { name: string; reason?: string | undefined },
  ) {
    this.label = `model ${config.model}`;
    this.maxChars = config.maxChars;
    this.rubric = config.rubric ?? defaultRubric(policy);
  }

  async classify(text: string): Promise<ClassifierVerdict> {
    const request: GenerationRequest = {
      model: this.config.model,
      messages: [
        { role: "system", content: this.rubric },
        { role: "user", content: text },
      ],
      // A verdict is a word or two (Llama Guard: "unsafe\nS1,S10").
      maxTokens: 32,
      temperature: 0,
      thinking: false,
      signal: AbortSignal.timeout(this.config.timeoutMs),
    };
    let answer = "";
    try {
      const prepared = this.router.prepare(request);
      for await (const event of this.router.generate(request, prepared)) {
        if (event.type === "content") answer += event.text;
        else if (event.type === "error") throw event.error;
      }
    } catch (error) {
      throw new ClassifierError(`the classifier model '${this.config.model}' failed: ${(error as Error).message}`, { cause: error });
    }
    const verdict = parseVerdict(answer);
    if (!verdict) throw new ClassifierError(`the classifier model '${this.config.model}' gave no verdict: ${JSON.stringify(answer.slice(0, 80))}`);
    return verdict;
  }
}

const FLAGGED = new Set(["flagged", "unsafe", "yes", "block", "blocked", "violation", "violating"]);
const SAFE = new Set(["safe", "no", "allow", "allowed", "ok", "clean", "pass"]);

/**
 * A classifier model's answer as a verdict: its first word says flagged (`flagged`, `unsafe`,
 * `yes`, …) or not (`safe`, `no`, …); categories in Llama Guard's form (`S1`, `S10`) anywhere
 * after it are kept. Null when the first word is neither.
 */
export function parseVerdict(answer: string): ClassifierVerdict | null {
  const words = answer.toLowerCase().match(/[a-z]+/g) ?? [];
  const first = words[0];
  if (first === undefined) return null;
  if (SAFE.has(first)) return { flagged: false, categories: [], score: 0 };
  if (!FLAGGED.has(first)) return null;
  const categories = [...new Set((answer.match(/\bS\d{1,2}\b/gi) ?? []).map((c) => c.toUpperCase()))];
  return { flagged: true, categories, score: 1 };
}

function defaultRubric(policy: { name: string; reason?: string | undefined }): string {
  return [
    `You are a content moderation classifier for the policy "${policy.name}".`,
    policy.reason ? `The policy: ${policy.reason}` : "The policy forbids harmful, abusive or dangerous content.",
    "Read the user's message and decide whether it violates the policy.",
    "Answer with exactly one word: flagged if it violates the policy, safe if it does not.",
  ].join("\n");
}

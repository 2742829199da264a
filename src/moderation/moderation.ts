import type { ModelRouter } from "../engines/router.ts";
import type { ChatMessage, EngineEvent, GenerationRequest } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import type { ModerationConfig } from "./config.ts";
import { checkOutput } from "./outputCheck.ts";
import { Policy, type PolicyHit } from "./policy.ts";
import { noticeOf, type Intervention, type ModerationChannel, type ModerationReport, type ModerationStage } from "./types.ts";

export interface ModerationDeps {
  router: ModelRouter;
  /** Every intervention, as it happens (metrics). */
  onIntervention?: (intervention: Intervention, model: string) => void;
  logger?: { warn(obj: object, msg?: string): void };
}

/** One text's result at POST /v1/moderations: per policy, whether it tripped and how surely. */
export interface TextModeration {
  flagged: boolean;
  categories: Record<string, boolean>;
  scores: Record<string, number>;
}

/**
 * The operator's moderation policies, compiled at start (src/moderation/config.ts), and the two
 * pipeline stages built from them (src/serving/completion.ts): `session(model)` gives a
 * completion its moderation — the input check after `authorize`, the output check on the event
 * stream — and collects its interventions, which the pipeline stores with the settlement.
 */
export class Moderation {
  readonly policies: readonly Policy[];

  constructor(
    config: ModerationConfig,
    private readonly deps: ModerationDeps,
  ) {
    for (const p of config.policies) {
      // A misspelt classifier model would fail every check (and, fail-open, let everything pass).
      if (p.classifier && !("url" in p.classifier) && !deps.router.model(p.classifier.model)) {
        throw new Error(`moderation policy '${p.name}': its classifier model '${p.classifier.model}' is not served here`);
      }
    }
    this.policies = config.policies.map((p) => new Policy(p, deps.router));
  }

  /** The policies that check answers by `model` (input or output), by name, for the model picker. */
  policyNames(model: string): string[] {
    return this.policies.filter((p) => p.appliesTo(model, "input") || p.appliesTo(model, "output")).map((p) => p.name);
  }

  /** The moderation of one completion of `model`; null when no policy applies to it. */
  session(model: string): ModerationSession | null {
    const policies = this.policies.filter((p) => p.appliesTo(model, "input") || p.appliesTo(model, "output"));
    return policies.length === 0 ? null : new ModerationSession(model, policies, this.deps);
  }

  /**
   * POST /v1/moderations: every policy (those of `model`, when it names a served model) on each
   * text, whatever its stage — the endpoint answers "would this text trip a policy". A policy's
   * category is its name; its score is 1 for a word or pattern hit, the classifier's otherwise.
   */
  async classify(texts: readonly string[], model?: string): Promise<TextModeration[]> {
    const served = model !== undefined && this.deps.router.model(model) !== undefined;
    const policies = served ? this.policies.filter((p) => p.appliesTo(model, "input") || p.appliesTo(model, "output")) : this.policies;
    return Promise.all(
      texts.map(async (text) => {
        const result: TextModeration = { flagged: false, categories: {}, scores: {} };
        for (const policy of policies) {
          const hit = await checkPolicy(policy, text, this.deps.logger);
          result.categories[policy.name] = hit !== null;
          result.scores[policy.name] = hit?.score ?? 0;
          result.flagged ||= hit !== null;
        }
        return result;
      }),
    );
  }
}

/** A policy on one text; a classifier failure counts as a hit only for fail-closed policies. */
async function checkPolicy(policy: Policy, text: string, logger: ModerationDeps["logger"]): Promise<PolicyHit | null> {
  try {
    return await policy.check(text);
  } catch (error) {
    logger?.warn({ err: error, policy: policy.name }, "moderation classifier failed");
    return policy.failClosed ? policy.failureHit() : null;
  }
}

/** The input policies read what the client wrote: user, system and tool messages, or a raw prompt. */
const INPUT_ROLES = new Set<ChatMessage["role"]>(["user", "system", "tool"]);

/** The moderation of one completion: its policies, the interventions so far, both stages. */
export class ModerationSession {
  readonly interventions: Intervention[] = [];
  withheld = false;
  private readonly warned = new Set<string>();

  constructor(
    readonly model: string,
    private readonly policies: readonly Policy[],
    private readonly deps: ModerationDeps,
  ) {}

  /**
   * The input stage: each input policy on the request's text. A withhold throws `moderation_blocked`
   * (400) naming the policy and its reason — nothing is generated or billed — and a warn is kept
   * for the answer's notice. Word and pattern lists read every message the client wrote; a
   * classifier reads the last one (earlier turns were judged when they were sent).
   */
  async checkInput(generation: GenerationRequest): Promise<void> {
    const texts = inputTexts(generation);
    if (texts.length === 0) return;
    for (const policy of this.policies) {
      if (!policy.appliesTo(this.model, "input")) continue;
      const hit = await this.checkTexts(policy, texts);
      if (!hit) continue;
      const intervention = this.record(policy, hit, "input", null, 0);
      if (policy.action === "withhold") {
        throw new ServiceError("invalid_request", intervention.notice, { code: "moderation_blocked", param: generation.completion ? "prompt" : "messages" });
      }
    }
  }

  /** The output stage over a completion's events (see src/moderation/outputCheck.ts); `stop` ends the generation. */
  output(source: AsyncIterable<EngineEvent>, stop: () => void): AsyncIterable<EngineEvent> {
    const checks = (channel: ModerationChannel) => this.policies.some((p) => p.appliesTo(this.model, "output", channel));
    if (!checks("content") && !checks("reasoning")) return source;
    return checkOutput(source, {
      checks,
      stop,
      judge: async (channel, window, offset) => {
        for (const policy of this.policies) {
          if (!policy.appliesTo(this.model, "output", channel)) continue;
          // A warning is given once per policy and stage; a withhold ends the answer.
          if (policy.action === "warn" && this.warned.has(`${policy.name}:output`)) continue;
          const hit = await checkPolicy(policy, window, this.deps.logger);
          if (!hit) continue;
          this.record(policy, hit, "output", channel, offset);
          if (policy.action === "withhold") return "withhold";
        }
        return "pass";
      },
    });
  }

  /** What users see of it: null when nothing intervened. */
  report(): ModerationReport | null {
    return this.interventions.length === 0 ? null : { withheld: this.withheld, interventions: [...this.interventions] };
  }

  private async checkTexts(policy: Policy, texts: string[]): Promise<PolicyHit | null> {
    // Words and patterns on every text; the classifier (slow, and the operator's cost) on the last.
    for (let i = 0; i < texts.length; i++) {
      const last = i === texts.length - 1;
      if (!last && policy.matcher.empty) continue;
      const hit = last ? await checkPolicy(policy, texts[i]!, this.deps.logger) : policy.checkText(texts[i]!);
      if (hit) return hit;
    }
    return null;
  }

  private record(policy: Policy, hit: PolicyHit, stage: ModerationStage, channel: ModerationChannel | null, offset: number): Intervention {
    const intervention: Intervention = {
      policy: policy.name,
      action: policy.action,
      stage,
      channel,
      offset,
      reason: hit.reason,
      notice: noticeOf(policy.name, policy.action, hit.reason),
      source: hit.source,
      matched: hit.matched,
    };
    this.interventions.push(intervention);
    if (policy.action === "warn") this.warned.add(`${policy.name}:${stage}`);
    else this.withheld = true;
    this.deps.onIntervention?.(intervention, this.model);
    return intervention;
  }
}

/** The texts a client sent: a raw prompt (and suffix), or the messages it wrote (never earlier answers). */
function inputTexts(generation: GenerationRequest): string[] {
  // The prompt last: it is what a classifier reads.
  if (generation.completion) return [generation.completion.suffix ?? "", generation.completion.prompt].filter((t) => t !== "");
  return generation.messages.filter((m) => INPUT_ROLES.has(m.role) && m.content !== "").map((m) => m.content);
}

import type { CompleterRequest, CompleterResult, Completer } from "../audit/completers.ts";
import type { Actor } from "../auth/actor.ts";
import { identityOf } from "../limits/identity.ts";
import type { Serving } from "./completion.ts";

/**
 * The model audit (src/audit) as an in-process client of the pipeline: it sits here, beside the
 * pipeline, so the audit itself depends on nothing above it (its HTTP completer lives with it).
 */

/** The pipeline's events, collected: the audit needs whole answers, not a stream. */
export class PipelineCompleter implements Completer {
  /**
   * @param actor who the requests run as, asked once per request (the audit account: its plan's
   *   quotas, rate limits and ledger apply; see src/audit/account.ts)
   */
  constructor(
    private readonly serving: Serving,
    private readonly actor: () => Promise<Actor>,
  ) {}

  async models(): Promise<string[]> {
    return this.serving.deps.router.models().map((m) => m.id);
  }

  async complete(request: CompleterRequest): Promise<CompleterResult> {
    const actor = await this.actor();
    const completion = await this.serving.start({
      actor,
      identity: identityOf(actor, null),
      clientIp: null,
      stream: false,
      generation: {
        model: request.model,
        messages: request.messages,
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.maxTokens !== undefined ? { maxTokens: request.maxTokens } : {}),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      },
    });
    const result: CompleterResult = { content: "", reasoning: "", finishReason: null, promptTokens: 0, completionTokens: 0, reasoningTokens: 0 };
    for await (const event of completion.events()) {
      if (event.type === "content") result.content += event.text;
      else if (event.type === "reasoning") result.reasoning += event.text;
      else if (event.type === "done") result.finishReason = event.finishReason;
      else if (event.type === "error") throw event.error;
      else if (event.type === "usage") {
        result.promptTokens = event.usage.prompt_tokens;
        result.completionTokens = event.usage.completion_tokens;
        result.reasoningTokens = event.usage.completion_tokens_details.reasoning_tokens;
      }
    }
    // A stopped request ends its events quietly; what it wrote so far is no answer. (One that
    // finished before the stop is a whole answer, already metered: it is kept.)
    if (result.finishReason === null || result.finishReason === "abort") request.signal?.throwIfAborted();
    return result;
  }
}


import type { Kysely } from "kysely";
import type { Meter, Charge } from "../billing/meter.ts";
import type { Plan } from "../billing/plans.ts";
import type { ModelRouter } from "../engines/router.ts";
import { emptyUsage, type EngineEvent, type FinishReason, type GenerationRequest, type ModelInfo, type PreparedRequest, type Usage } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import type { QueueUpdate } from "../limits/admissionQueue.ts";
import type { CompletionPass, Limits } from "../limits/limits.ts";
import { withdrawnCredentials } from "../auth/withdrawn.ts";
import { authorize } from "../policies/index.ts";
import type { Database } from "../store/schema.ts";
import { billingSubject, settledStatus } from "./billingSubject.ts";
import { writeRequestLog } from "./requestLog.ts";
import type { CompletionInput, CompletionOutcome, CompletionRecord } from "./types.ts";

/**
 * THE serving pipeline: every completion, whatever surface it came from (/v1, the web app), runs
 * these stages in this order, once each:
 *
 *   resolve    the model exists; cheap bounds that need no tokenizing (Engine.inspect), message bounds
 *   authorize  policies: `model.use` with the key's scope and the caller's plan
 *   admit      rate limits, concurrency caps, a place in the model's fair admission queue
 *   prepare    the engine tokenizes the prompt ONCE and checks the context (Engine.prepare)
 *   reserve    billing: plan quota, balance reservation of the largest possible cost (ledger entry opened)
 *   ── `Serving.start` returns here: refusals so far are thrown, before a surface sends a byte ──
 *   wait       for the request's turn in the queue (`Completion.events`)
 *   generate   engine.generate(prepared) — the engine reuses the prepared tokens
 *   settle     ledger + balance + request log + the surface's own writes (the web app's answer) in
 *              ONE transaction, exactly once, and COMMITTED BEFORE the stream's last event is
 *              released to the surface: the surface sends `[DONE]` / `done` only after it.
 *
 * New stages go between these (see README "The serving pipeline"): input moderation after
 * authorize, retrieval after reserve (each search a ledger line item), output moderation on the
 * event stream in `events()`.
 */
export interface ServingDeps {
  router: ModelRouter;
  /** Rate limits, caps and the admission queue; absent: every request runs at once. */
  limits?: Limits;
  /** Billing; absent: nothing is metered (a bare server without a store). */
  meter?: Meter;
  /** Where settlements commit; absent: nothing is recorded. */
  db?: Kysely<Database>;
  /** The plan that limits a signed-in caller's models (null: no limit). */
  planOf?: (actor: CompletionInput["actor"]) => Promise<Plan | null>;
  /** The status and code an error answers with (the transport's mapping, for the request log). */
  describeError: (error: unknown) => { status: number; code: string | null };
  /** Every finished completion (metrics). */
  observe?: (record: CompletionRecord) => void;
  /** Tries before a settlement that cannot commit is given up (default 3). */
  settleAttempts?: number;
  /**
   * How often running completions check that their account and API key are still valid (ms,
   * default 500): a disabled account or a revoked key ends its streams within about this long.
   * Needs `db`; 0 turns it off.
   */
  credentialCheckMs?: number;
  logger?: { error(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export class Serving {
  /** Completions admitted and not yet settled, for the credential check. */
  private readonly running = new Set<Completion>();
  private watcher: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(readonly deps: ServingDeps) {}

  /**
   * Runs the stages up to `reserve`. Throws the refusal (ServiceError / EngineError) when one
   * refuses — recorded and settled first — so the surface can answer with a status before any byte.
   */
  async start(input: CompletionInput): Promise<Completion> {
    const completion = new Completion(this.deps, input, () => this.forget(completion));
    try {
      await completion.runAdmission();
    } catch (error) {
      await completion.fail(error);
      throw error;
    }
    if (input.actor.kind === "user") this.track(completion);
    return completion;
  }

  /** Stops the credential check (server shutdown). */
  close(): void {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
  }

  private track(completion: Completion): void {
    this.running.add(completion);
    const every = this.deps.credentialCheckMs ?? 500;
    if (this.watcher || !this.deps.db || every <= 0) return;
    this.watcher = setInterval(() => void this.checkCredentials(), every);
    this.watcher.unref();
  }

  private forget(completion: Completion): void {
    this.running.delete(completion);
    if (this.running.size === 0) this.close();
  }

  /** Ends the completions of accounts disabled and keys revoked since they were admitted. */
  private async checkCredentials(): Promise<void> {
    if (this.checking || this.running.size === 0 || !this.deps.db) return;
    this.checking = true;
    try {
      const users = new Set<string>();
      const keys = new Set<string>();
      for (const c of this.running) {
        const actor = c.actor;
        if (actor.kind !== "user") continue;
        users.add(actor.userId);
        if (actor.apiKeyId) keys.add(actor.apiKeyId);
      }
      const withdrawn = await withdrawnCredentials(this.deps.db, { userIds: [...users], apiKeyIds: [...keys] });
      for (const c of this.running) {
        const actor = c.actor;
        if (actor.kind !== "user") continue;
        if (withdrawn.users.has(actor.userId)) {
          c.cut(new ServiceError("unauthenticated", "Your account was disabled while this answer was being written.", { code: "account_disabled" }));
        } else if (actor.apiKeyId && withdrawn.apiKeys.has(actor.apiKeyId)) {
          c.cut(new ServiceError("unauthenticated", "The API key of this request was revoked while the answer was being written.", { code: "api_key_revoked" }));
        }
      }
    } catch (error) {
      // A database hiccup must not end anyone's answer; the next tick tries again.
      this.deps.logger?.warn({ err: error }, "could not check the credentials of running completions");
    } finally {
      this.checking = false;
    }
  }
}

/** One request on its way through the pipeline (see Serving). */
export class Completion {
  model: ModelInfo | undefined;
  private pass: CompletionPass | null = null;
  private prepared: PreparedRequest | null = null;
  private charge: Charge | null = null;
  private generation: GenerationRequest;
  private readonly started = performance.now();
  private settled: Promise<void> | null = null;
  /**
   * The pipeline's own abort: follows the client's signal, and also fires when the pipeline ends
   * the request itself (`cut`: the account was disabled, the key revoked).
   */
  private readonly abort = new AbortController();
  private cutReason: ServiceError | null = null;

  constructor(
    private readonly deps: ServingDeps,
    private readonly input: CompletionInput,
    private readonly onSettled: () => void = () => undefined,
  ) {
    const client = input.generation.signal;
    if (client?.aborted) this.abort.abort(client.reason);
    else client?.addEventListener("abort", () => this.abort.abort(client.reason), { once: true });
    this.generation = { ...input.generation, signal: this.abort.signal };
  }

  /** Who asked. */
  get actor(): CompletionInput["actor"] {
    return this.input.actor;
  }

  /** Whether the client went away (or pressed Stop). */
  private get clientGone(): boolean {
    return this.input.generation.signal?.aborted === true;
  }

  /**
   * Ends the request from the pipeline's side: the engine stops, what was generated is billed per
   * the rule (a failed request pays for its tokens), and the surface gets `reason` as the error.
   */
  cut(reason: ServiceError): void {
    if (this.cutReason || this.abort.signal.aborted) return;
    this.cutReason = reason;
    this.abort.abort(reason);
  }

  /** x-ratelimit-* figures to send with the response. */
  get headers(): Record<string, string> {
    return this.pass?.headers ?? {};
  }

  /** True when the request waits in line before it runs. */
  get queued(): boolean {
    return this.pass?.queued ?? false;
  }

  /** The place in line now; null when running (or never queued). */
  position(): QueueUpdate | null {
    return this.pass?.position() ?? null;
  }

  /** The stages before the surface commits to an answer: resolve → authorize → admit → prepare → reserve. */
  async runAdmission(): Promise<void> {
    const { router, limits, meter } = this.deps;
    const { actor } = this.input;
    const generation = this.generation;
    // resolve: unknown models are 404 before anything is counted; byte bounds need no tokenizing.
    limits?.checkMessages(generation.messages);
    if (generation.completion) limits?.checkCompletionTexts(generation.completion);
    this.model = router.inspect(generation);
    // authorize: the one model-access decision (key scope → 404, plan → 403).
    // The plan is read once here and handed to billing, which needs it again for quotas and prices.
    const plan = (await this.deps.planOf?.(actor)) ?? null;
    authorize(actor, "model.use", { id: this.model.id, plan });
    // admit: rate limits refuse (429/503) before the expensive work below.
    if (limits) {
      this.pass = await limits.admitCompletion({
        identity: this.input.identity,
        model: this.model.id,
        ...(generation.signal ? { signal: generation.signal } : {}),
        ...(this.input.onQueue ? { onQueue: this.input.onQueue } : {}),
      });
    }
    // prepare: the one tokenization; a prompt that cannot fit is refused now, not after waiting.
    this.prepared = router.prepare(generation);
    // reserve: the largest possible cost, and the request tightened to what was reserved.
    if (meter) {
      this.charge = await meter.reserve({
        subject: billingSubject(actor),
        ...(plan ? { plan } : {}),
        model: this.model.id,
        engine: this.model.engine,
        promptTokens: this.prepared.promptTokens,
        ...(generation.maxTokens !== undefined ? { maxTokens: generation.maxTokens } : {}),
        ...(this.model.contextLength !== undefined ? { contextLength: this.model.contextLength, promptExact: this.prepared.exact } : {}),
        ...(generation.thinkingBudget !== undefined ? { thinkingBudget: generation.thinkingBudget } : {}),
      });
      const tightened: GenerationRequest = { ...generation };
      if (this.charge.maxTokens !== undefined) tightened.maxTokens = this.charge.maxTokens;
      if (this.charge.thinkingBudget !== undefined) tightened.thinkingBudget = this.charge.thinkingBudget;
      this.generation = tightened;
    }
    await this.input.recorder?.started?.(this.model);
  }

  /**
   * Waits for the request's turn, generates, and settles. Yields the engine's events; errors
   * before the first reasoning/content event are thrown (the surface may still answer with a
   * status), later ones arrive as an `error` event. The settlement is committed before this
   * iterator finishes — also when the engine fails — so a surface that sends its end marker after
   * the loop never announces an answer that is not on the books. Consume it to the end: the
   * client's abort signal stops the engine, and the usage of what it really generated is billed.
   */
  events(): AsyncGenerator<EngineEvent> {
    if (this.iterator) throw new Error("a completion's events can be read once");
    this.iterator = this.run();
    return this.iterator;
  }

  private iterator: AsyncGenerator<EngineEvent> | null = null;

  private async *run(): AsyncGenerator<EngineEvent> {
    const signal = this.generation.signal;
    let usage: Usage = emptyUsage();
    let finishReason: FinishReason | null = null;
    let ttftMs: number | null = null;
    let output = false;
    let failure: unknown = null;
    try {
      await this.pass?.ready;
      if (signal?.aborted) throw signal.reason;
      for await (const event of this.deps.router.generate(this.generation, this.prepared ?? undefined)) {
        if (event.type === "error") throw event.error;
        if (event.type === "usage") usage = event.usage;
        else if (event.type === "done") finishReason = event.finishReason;
        else if (ttftMs === null) ttftMs = Math.round(performance.now() - this.started);
        output ||= event.type === "reasoning" || event.type === "content" || event.type === "tool_call";
        this.input.recorder?.event?.(event);
        yield event;
      }
    } catch (error) {
      failure = error;
    } finally {
      // Reached also when the surface stops reading early: settle with what is known.
      await this.settle({ failure: this.cutReason ?? failure, usage, finishReason, ttftMs });
    }
    if (this.cutReason) failure = this.cutReason;
    if (failure !== null && !this.clientGone) {
      if (!output) throw failure;
      yield { type: "error", error: asServiceError(failure, this.deps.logger) };
    }
    const settlementError = this.settlementError;
    if (settlementError) {
      if (!output) throw settlementError;
      yield { type: "error", error: settlementError };
    }
  }

  /** The outcome as settled; undefined until then. */
  outcome: CompletionOutcome | undefined;
  private settlementError: ServiceError | undefined;

  /** Settles a request refused or failed before its events were read. */
  async fail(error: unknown): Promise<void> {
    await this.settle({ failure: error, usage: emptyUsage(), finishReason: null, ttftMs: null });
  }

  /**
   * However the surface stopped reading (it failed, or never started): stops the generation and
   * settles now if that has not happened — so no reservation is left renewed for ever. Idempotent.
   */
  async abandon(): Promise<void> {
    await this.iterator?.return(undefined).catch(() => undefined);
    if (!this.settled) await this.fail(new ServiceError("internal", "The request was abandoned before it ran.", { code: "internal_error" }));
    await this.settled;
  }

  private settle(result: { failure: unknown; usage: Usage; finishReason: FinishReason | null; ttftMs: number | null }): Promise<void> {
    this.settled ??= this.commit(result);
    return this.settled;
  }

  private async commit(result: { failure: unknown; usage: Usage; finishReason: FinishReason | null; ttftMs: number | null }): Promise<void> {
    this.onSettled();
    const aborted = this.clientGone && this.cutReason === null;
    const described = result.failure !== null && !aborted ? this.deps.describeError(result.failure) : null;
    const status = described ? described.status : aborted ? 499 : 200;
    const outcome: CompletionOutcome = {
      status,
      errorCode: described?.code ?? null,
      error: aborted ? null : result.failure,
      usage: result.usage,
      finishReason: result.finishReason,
      ttftMs: result.ttftMs,
      totalMs: Math.round(performance.now() - this.started),
      queueMs: Math.round(this.pass?.waitedMs() ?? 0),
    };
    this.outcome = outcome;
    this.pass?.finish({ totalTokens: result.usage.total_tokens, completed: status === 200 });
    const record: CompletionRecord = {
      model: this.generation.model,
      engine: this.model?.engine ?? "none",
      status,
      errorCode: outcome.errorCode,
      stream: this.input.stream,
      usage: result.usage,
      ttftMs: outcome.ttftMs,
      totalMs: outcome.totalMs,
      queueMs: outcome.queueMs,
      clientIp: this.input.clientIp,
      charge: this.charge,
    };
    this.deps.observe?.(record);
    await this.input.recorder?.beforeSettle?.().catch((err) => this.deps.logger?.warn({ err }, "could not finish writes before settlement"));
    const db = this.deps.db;
    if (!db) return;
    const attempts = Math.max(1, this.deps.settleAttempts ?? 3);
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await db.transaction().execute(async (trx) => {
          if (this.charge) await this.deps.meter!.settle(trx, this.charge, { status: settledStatus(status), usage: result.usage });
          await this.input.recorder?.settle?.(trx, outcome);
          await writeRequestLog(trx, record);
        });
        return;
      } catch (error) {
        lastError = error;
        if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
    // The books cannot be written (database down). Crash rule: charged nothing — the reservation
    // stops being renewed and the sweep releases it — and the surface is told.
    if (this.charge) this.deps.meter?.abandon?.(this.charge);
    this.deps.logger?.error({ err: lastError, model: record.model, status }, "could not settle a completion: released unbilled");
    this.settlementError = new ServiceError("unavailable", "The answer could not be recorded because the database is unavailable; it was not charged.", {
      code: "settlement_failed",
      retryAfterS: 5,
      cause: lastError,
    });
  }
}

/** Errors after the first byte travel as events: anything that is not a ServiceError is our fault, logged with its cause. */
function asServiceError(error: unknown, logger: ServingDeps["logger"]): ServiceError {
  if (error instanceof ServiceError) return error;
  logger?.error({ err: error }, "completion failed");
  return new ServiceError("internal", "The server had an error while processing your request.", { code: "internal_error", cause: error });
}

import type { Kysely, Transaction } from "kysely";
import type { Meter, Charge, ReservationInput } from "../billing/meter.ts";
import type { Plan } from "../billing/plans.ts";
import { requireFeature, isGatedFeature } from "../billing/features.ts";
import type { MeteredItem } from "../billing/lineItems.ts";
import { insertSearches } from "../search/history.ts";
import type { ModelRouter } from "../engines/router.ts";
import { emptyUsage, type EngineEvent, type FinishReason, type GenerationRequest, type ModelInfo, type PreparedRequest, type Usage } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import type { QueueUpdate } from "../limits/admissionQueue.ts";
import type { CompletionPass, Limits } from "../limits/limits.ts";
import { withdrawnCredentials } from "../auth/withdrawn.ts";
import type { Moderation, ModerationSession } from "../moderation/moderation.ts";
import { insertInterventions } from "../moderation/store.ts";
import type { ModerationReport } from "../moderation/types.ts";
import { authorize } from "../policies/index.ts";
import type { Database } from "../store/schema.ts";
import { SPAN, SPUTNIK } from "../tracing/attributes.ts";
import { startGenerationSpan, type GenerationSpan } from "../tracing/genai.ts";
import { inStage, NO_STAGE, startStage, type Stage } from "../tracing/spans.ts";
import { billingSubject, settledStatus } from "./billingSubject.ts";
import { writeRequestLog } from "./requestLog.ts";
import type { Retrieval, Retriever } from "../search/types.ts";
import type { CompletionInput, CompletionOutcome, CompletionRecord } from "./types.ts";

/**
 * THE serving pipeline: every completion, whatever surface it came from (/v1, the web app), runs
 * these stages in this order, once each:
 *
 *   resolve    the model exists; cheap bounds that need no tokenizing (Engine.inspect), message bounds
 *   authorize  policies: `model.use` with the key's scope and the caller's plan
 *   moderate   the operator's input policies (src/moderation): a withhold refuses (400 moderation_blocked)
 *   admit      rate limits, concurrency caps, a place in the model's fair admission queue
 *   retrieve   with search or documents asked for: the plan's features and search quota are
 *              checked, then the retriever searches and puts numbered passages into the prompt —
 *              before the engine is asked, so a slow search provider never holds a sequence
 *   prepare    the engine tokenizes the prompt ONCE and checks the context (Engine.prepare)
 *   reserve    billing: plan quota, balance reservation of the largest possible cost (ledger entry opened)
 *   ── `Serving.start` returns here: refusals so far are thrown, before a surface sends a byte ──
 *   wait       for the request's turn in the queue (`Completion.events`)
 *   generate   engine.generate(prepared) — the engine reuses the prepared tokens
 *   moderate   the output policies on the event stream, in sentence-sized windows: a withhold ends
 *              the answer after what was already shown (kept), never replacing it
 *   settle     ledger + balance + request log + the surface's own writes (the web app's answer) in
 *              ONE transaction, exactly once, and COMMITTED BEFORE the stream's last event is
 *              released to the surface: the surface sends `[DONE]` / `done` only after it.
 *
 * New stages go between these (see README "The serving pipeline"), like retrieval after admit (each
 * search a ledger line item) and moderation after authorize and on the event stream in `events()`.
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
  /** The operator's moderation policies (input and output stages); absent: none. */
  moderation?: Moderation;
  /** Search over the web and the user's documents (src/search/retrieve.ts); absent: requests that ask for it are refused. */
  retriever?: Retriever;
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
  /** Every completion from its start until its settlement is over (API and web alike): what a drain waits for. */
  private readonly open = new Set<Completion>();
  private draining = false;
  private watcher: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(readonly deps: ServingDeps) {}

  /**
   * Runs the stages up to `reserve`. Throws the refusal (ServiceError / EngineError) when one
   * refuses — recorded and settled first — so the surface can answer with a status before any byte.
   */
  async start(input: CompletionInput): Promise<Completion> {
    if (this.draining) throw shuttingDown("The server is restarting. Please retry shortly.");
    const completion = new Completion(this.deps, input, () => this.forget(completion));
    this.open.add(completion);
    void completion.done.then(() => this.open.delete(completion));
    try {
      await completion.runAdmission();
    } catch (error) {
      await completion.fail(error);
      throw error;
    }
    if (input.actor.kind === "user") this.track(completion);
    return completion;
  }

  /**
   * How many prompt tokens `generation` would cost, counted by the engine that would serve it
   * (Anthropic's count_tokens): the resolve and authorize stages of a completion and its byte
   * bounds, then the engine's one tokenization. Nothing is queued, reserved or billed — the byte
   * bounds keep the tokenizing as cheap as a completion's prepare stage. `exact` is false where
   * the engine can only give an upper bound (an upstream model).
   */
  async countPromptTokens(actor: CompletionInput["actor"], generation: GenerationRequest): Promise<{ model: ModelInfo; promptTokens: number; exact: boolean }> {
    const { router, limits } = this.deps;
    limits?.checkMessages(generation.messages);
    const model = router.inspect(generation);
    const plan = (await this.deps.planOf?.(actor)) ?? null;
    authorize(actor, "model.use", { id: model.id, plan });
    const prepared = router.prepare(generation);
    return { model, promptTokens: prepared.promptTokens, exact: prepared.exact };
  }

  /**
   * Server shutdown: refuses new completions, gives the running ones (API streams and web replies
   * alike) up to `timeoutMs` to finish, then cuts the rest: the engine stops, the tokens generated
   * are billed as for any failed request, and the surface gets a `shutting_down` error (an error
   * event when bytes went out already; the web app stores its answer as interrupted). Resolves
   * once every completion has settled. Requests waiting in the queue are refused by the limits'
   * own drain, which should come first.
   */
  async drain(timeoutMs: number): Promise<{ finished: number; cut: number }> {
    this.draining = true;
    const total = this.open.size;
    if (total > 0 && timeoutMs > 0) await settledWithin([...this.open], timeoutMs);
    const late = [...this.open];
    for (const completion of late) completion.cut(shuttingDown("The server is restarting and could not finish this answer in time. Please retry."));
    // A cut completion settles as soon as its surface reads on; one that nobody reads any more
    // (a surface stuck on a dead socket) is settled with what is known rather than waited for.
    if (!(await settledWithin(late, CUT_SETTLE_GRACE_MS))) await Promise.all([...this.open].map((c) => c.abandon()));
    return { finished: total - late.length, cut: late.length };
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

/** How long cut completions get to settle through their surfaces before they are abandoned. */
const CUT_SETTLE_GRACE_MS = 5_000;

/** Whether every one of `completions` settled within `ms`. */
async function settledWithin(completions: Completion[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([Promise.all(completions.map((c) => c.done)).then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The refusal of a completion during shutdown, and the end of one cut by it (clients retry either). */
function shuttingDown(message: string): ServiceError {
  return new ServiceError("unavailable", message, { code: "shutting_down", retryAfterS: 5 });
}

/** Whether `error` is the end of a completion refused or cut by a shutdown (its queue drained, or `Serving.drain`). */
export function isShutdownError(error: unknown): boolean {
  return error instanceof ServiceError && error.code === "shutting_down";
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
  private resolveDone!: () => void;
  /** Resolves once the settlement is over (committed, or given up): the drain waits for it. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  /**
   * The pipeline's own abort: follows the client's signal, and also fires when the pipeline ends
   * the request itself (`cut`: the account was disabled, the key revoked).
   */
  private readonly abort = new AbortController();
  private cutReason: ServiceError | null = null;
  /** The span of the wait for the request's turn (src/tracing; a no-op while tracing is off). */
  private queueWait: Stage = NO_STAGE;
  /** This completion's moderation (its policies and interventions); null when no policy applies. */
  private moderationSession: ModerationSession | null = null;
  /** What the retrieve stage found; null when the request asked for no search. */
  private retrieved: Retrieval | null = null;

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
    // Once settling, the outcome is decided: a late cut must not add an error to a settled answer.
    if (this.settled || this.cutReason || this.abort.signal.aborted) return;
    this.cutReason = reason;
    this.abort.abort(reason);
  }

  /**
   * What moderation did so far (input warnings, output warnings, a withhold); null when nothing
   * intervened. Final once the events have been read to the end: surfaces present it then.
   */
  get moderation(): ModerationReport | null {
    return this.moderationSession?.report() ?? null;
  }

  /** What search found for this request (sources to cite, what was searched); null without search. */
  get retrieval(): Retrieval | null {
    return this.retrieved;
  }

  /** x-ratelimit-* figures to send with the response. */
  get headers(): Record<string, string> {
    return this.pass?.headers ?? {};
  }

  /** The prompt's size in tokens as the engine counted it at the prepare stage (an upper bound where not exact). */
  get promptTokens(): number | undefined {
    return this.prepared?.promptTokens;
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
    // moderate: the operator's input policies on what the client wrote. A withhold refuses here
    // (400 moderation_blocked, naming the policy and its reason), recorded and stored like any
    // refusal; a warning rides on the answer.
    this.moderationSession = this.deps.moderation?.session(this.model.id) ?? null;
    await this.moderationSession?.checkInput(generation);
    // admit: rate limits refuse (429/503) before the expensive work below.
    if (limits) {
      const model = this.model.id;
      this.pass = await inStage(SPAN.admit, () =>
        limits.admitCompletion({
          identity: this.input.identity,
          model,
          ...(generation.signal ? { signal: generation.signal } : {}),
          ...(this.input.onQueue ? { onQueue: this.input.onQueue } : {}),
        }),
      );
      // Until its turn comes (`run`); prepare and reserve happen meanwhile.
      this.queueWait = startStage(SPAN.queueWait, { [SPUTNIK.queued]: this.pass.queued });
    }
    // retrieve: the passages go into the prompt before it is tokenized.
    if (this.input.retrieval) await this.retrieve(plan);
    // prepare: the one tokenization; a prompt that cannot fit is refused now, not after waiting.
    this.prepared = router.prepare(this.generation);
    // reserve: the largest possible cost, and the request tightened to what was reserved.
    if (meter) {
      const reservation: ReservationInput = {
        subject: billingSubject(actor),
        ...(plan ? { plan } : {}),
        model: this.model.id,
        engine: this.model.engine,
        promptTokens: this.prepared.promptTokens,
        ...(generation.maxTokens !== undefined ? { maxTokens: generation.maxTokens } : {}),
        ...(this.model.contextLength !== undefined ? { contextLength: this.model.contextLength, promptExact: this.prepared.exact } : {}),
        ...(generation.thinkingBudget !== undefined ? { thinkingBudget: generation.thinkingBudget } : {}),
        ...(this.retrieved ? { features: featureMaxima(this.retrieved.items) } : {}),
      };
      this.charge = await inStage(SPAN.reserve, () => meter.reserve(reservation));
      const tightened: GenerationRequest = { ...this.generation };
      if (this.charge.maxTokens !== undefined) tightened.maxTokens = this.charge.maxTokens;
      if (this.charge.thinkingBudget !== undefined) tightened.thinkingBudget = this.charge.thinkingBudget;
      this.generation = tightened;
    }
    await this.input.recorder?.started?.(this.model);
  }

  /**
   * The retrieve stage. The plan's features and the daily search quota are checked BEFORE any
   * search runs (a plan without `search` never triggers one); the searches that ran are reserved
   * with the request and settled as line items (`search` per web search), whatever the outcome.
   */
  private async retrieve(plan: Plan | null): Promise<void> {
    const request = this.input.retrieval!;
    if (!request.web && request.fileIds.length === 0) return;
    const features = { search: request.web ? 1 : 0, documents: request.fileIds.length > 0 ? 1 : 0 };
    const { meter, retriever } = this.deps;
    if (meter) await meter.admitFeatures({ subject: billingSubject(this.input.actor), ...(plan ? { plan } : {}), features });
    else if (plan) for (const [name, n] of Object.entries(features)) if (n > 0 && isGatedFeature(name)) requireFeature(plan, name);
    if (!retriever) {
      throw new ServiceError("invalid_request", "Search is not available on this server.", {
        code: "search_unavailable",
        param: request.web ? "web_search_options" : "file_ids",
      });
    }
    const model = this.model!;
    const retrieved = await inStage("sputnik.retrieve", () =>
      retriever.retrieve({ actor: this.input.actor, request, generation: this.generation, model, signal: this.abort.signal }),
    );
    this.retrieved = retrieved;
    this.generation = { ...this.generation, messages: retrieved.messages };
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
    let generationSpan: GenerationSpan | null = null;
    try {
      await this.pass?.ready;
      this.queueWait.end();
      if (signal?.aborted) throw signal.reason;
      generationSpan = startGenerationSpan(this.generation, this.model, this.input.stream);
      const generated = this.deps.router.generate(this.generation, this.prepared ?? undefined);
      // moderate: output policies release the answer window by window; a withhold stops the engine.
      const checked = this.moderationSession?.output(generated, () => this.stopForModeration()) ?? generated;
      for await (const event of checked) {
        if (event.type === "error") throw event.error;
        if (event.type === "usage") usage = event.usage;
        else if (event.type === "done") finishReason = event.finishReason;
        else if (ttftMs === null) ttftMs = Math.round(performance.now() - this.started);
        output ||= event.type === "reasoning" || event.type === "content" || event.type === "tool_call";
        this.input.recorder?.event?.(event);
        generationSpan.event(event);
        yield event;
      }
    } catch (error) {
      failure = error;
    } finally {
      // The spans end before the settlement's; a client that left is no error of ours.
      const spanError = this.clientGone && this.cutReason === null ? null : (this.cutReason ?? failure);
      if (spanError !== null) this.queueWait.fail(spanError);
      this.queueWait.end();
      generationSpan?.end({ usage, finishReason, failure: spanError, ttftMs });
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

  /**
   * A withhold tripped on the output: the engine stops like for a client that left (what it
   * generated is billed), but the answer ends normally — with its notice, not an error.
   */
  private stopForModeration(): void {
    if (!this.abort.signal.aborted) this.abort.abort(new Error("withheld by a moderation policy"));
  }

  /** Whom the interventions belong to, for the admin list (the web app's recorder names its answer). */
  private interventionContext() {
    const actor = this.input.actor;
    const target = this.input.recorder?.moderationTarget?.() ?? null;
    return {
      model: this.generation.model,
      userId: actor.kind === "user" ? actor.userId : null,
      apiKeyId: actor.kind === "user" ? actor.apiKeyId : null,
      conversationId: target?.conversationId ?? null,
      messageId: target?.messageId ?? null,
    };
  }

  /** The searches this request ran, in the user's search history (written with the settlement). */
  private async recordSearches(trx: Transaction<Database>, retrieved: Retrieval): Promise<void> {
    const actor = this.input.actor;
    if (actor.kind !== "user" || retrieved.queries.length === 0) return;
    const target = this.input.recorder?.moderationTarget?.() ?? null;
    await insertSearches(trx, actor.userId, retrieved.queries, { conversationId: target?.conversationId ?? null, messageId: target?.messageId ?? null });
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
    this.settled ??= this.commit(result).finally(() => this.resolveDone());
    return this.settled;
  }

  private async commit(result: { failure: unknown; usage: Usage; finishReason: FinishReason | null; ttftMs: number | null }): Promise<void> {
    this.onSettled();
    // A request that never reached its turn (refused, abandoned) stops waiting here.
    this.queueWait.end();
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
      moderation: this.moderation,
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
    const settling = startStage(SPAN.settle, { [SPUTNIK.outcomeStatus]: status });
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      settling.set({ [SPUTNIK.settleAttempts]: attempt });
      try {
        await db.transaction().execute(async (trx) => {
          const items = this.retrieved?.items ?? [];
          if (this.charge) await this.deps.meter!.settle(trx, this.charge, { status: settledStatus(status), usage: result.usage, ...(items.length > 0 ? { items } : {}) });
          await this.input.recorder?.settle?.(trx, outcome);
          if (this.retrieved) await this.recordSearches(trx, this.retrieved);
          await writeRequestLog(trx, record);
          if (this.moderationSession) await insertInterventions(trx, this.moderationSession.interventions, this.interventionContext());
        });
        settling.end();
        return;
      } catch (error) {
        lastError = error;
        if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
    // The books cannot be written (database down). Crash rule: charged nothing — the reservation
    // stops being renewed and the sweep releases it — and the surface is told.
    if (this.charge) this.deps.meter?.abandon?.(this.charge);
    settling.fail(lastError);
    settling.end();
    this.deps.logger?.error({ err: lastError, model: record.model, status }, "could not settle a completion: released unbilled");
    this.settlementError = new ServiceError("unavailable", "The answer could not be recorded because the database is unavailable; it was not charged.", {
      code: "settlement_failed",
      retryAfterS: 5,
      cause: lastError,
    });
  }
}

/** The most of each meter a request may use, for the reservation (repeated meters add up). */
function featureMaxima(items: readonly MeteredItem[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[item.meter] = (out[item.meter] ?? 0) + item.quantity;
  return out;
}

/** Errors after the first byte travel as events: anything that is not a ServiceError is our fault, logged with its cause. */
function asServiceError(error: unknown, logger: ServingDeps["logger"]): ServiceError {
  if (error instanceof ServiceError) return error;
  logger?.error({ err: error }, "completion failed");
  return new ServiceError("internal", "The server had an error while processing your request.", { code: "internal_error", cause: error });
}

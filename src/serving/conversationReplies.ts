import type { Kysely } from "kysely";
import { LOCAL, type Actor } from "../auth/actor.ts";
import { titleFromExchange } from "../chat/conversationTitle.ts";
import {
  findMessage,
  insertMessage,
  markInterrupted,
  titleInterrupted,
  updateConversation,
  updateMessage,
  type Conversation,
  type Message,
  type MessagePatch,
} from "../chat/conversations.ts";
import { pathTo } from "../chat/messageTree.ts";
import { withSettings, type ConversationSettings } from "../chat/conversationSettings.ts";
import { EngineError, type ChatMessage, type EngineEvent, type GenerationRequest, type Usage } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import { EMPTY_ANSWER } from "../chat/emptyAnswer.ts";
import type { QueueUpdate } from "../limits/admissionQueue.ts";
import { identityOf, type Identity } from "../limits/identity.ts";
import { presentModeration } from "../presenters/moderation.ts";
import type { ModerationReport } from "../moderation/types.ts";
import type { Dialect } from "../store/database.ts";
import type { Database } from "../store/schema.ts";
import type { ReplyError, ReplyEvent, ReplyInput } from "../chat/replyEvents.ts";
import { isShutdownError, type Completion, type Serving } from "./completion.ts";
import { ReplyChannel, type ChannelWatcher, DEFAULT_CHANNEL_EVENTS } from "./replyChannel.ts";
import type { RetrievalRequest } from "../search/types.ts";
import type { CompletionOutcome, CompletionRecorder } from "./types.ts";
import { storedSources } from "../presenters/sources.ts";

export type { ReplyError, ReplyEvent, ReplyInput } from "../chat/replyEvents.ts";

export interface ReplyOptions {
  conversation: Conversation;
  /** Every message of the conversation (the route loaded them to validate the input). */
  messages: Message[];
  input: ReplyInput;
  /**
   * What to generate: built by `replyGeneration`. The web app passes no signal: its answers belong
   * to the server and only `stop` (or shutdown) ends them. A caller that does pass one (the CLI,
   * tests) ends the reply when it aborts.
   */
  generation: GenerationRequest;
  /** Who asks (policies, limits, billing); defaults to the local operator (tests, a bare server). */
  actor?: Actor;
  identity?: Identity;
  clientIp?: string | null;
  /** Search asked for (the Search toggle, attached documents): the sources go out as a `sources` event and are stored with the answer. */
  retrieval?: RetrievalRequest;
}

/** How a reply ended, for the request log and billing. */
export interface ReplyOutcome {
  message: Message;
  usage: Usage;
  /** 200 complete, 499 stopped, else the failure's status. */
  status: number;
  errorCode: string | null;
  ttftMs: number | null;
  totalMs: number;
}

/**
 * The generation request for a reply: the thread up to the question (earlier reasoning dropped),
 * plus the new user message when sending. `thinking` false asks a reasoning model not to reason.
 * `settings`: the conversation's own (system prompt, sampling, bounds; src/chat/conversationSettings.ts).
 */
export function replyGeneration(
  messages: Message[],
  input: ReplyInput,
  options: { model: string; thinking: boolean; signal?: AbortSignal; settings?: ConversationSettings },
): GenerationRequest {
  const thread =
    input.kind === "send"
      ? [...toPrompt(pathTo(messages, input.parentId)), { role: "user" as const, content: input.content }]
      : toPrompt(pathTo(messages, input.target.parent_id));
  const request: GenerationRequest = { model: options.model, messages: thread, ...(options.thinking ? {} : { thinking: false }), ...(options.signal ? { signal: options.signal } : {}) };
  return options.settings ? withSettings(request, options.settings) : request;
}

export interface ConversationRepliesOptions {
  db: Kysely<Database>;
  /** The serving pipeline every reply runs through (the same one as /v1/chat/completions). */
  serving: Serving;
  dialect: Dialect;
  /** How often streamed text is written to the store (a crash loses at most this much). */
  flushIntervalMs?: number;
  /** When a stream with no write counts as dead (default STALE_STREAM_MS); see src/chat/config.ts. */
  staleStreamMs?: number;
  logger?: { error(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
  /**
   * Replies one account may have running at once (0 = no cap). Answers outlive their tab, so
   * without it a user could leave any number generating; the server passes the per-key
   * concurrency cap (limits.maxConcurrentPerKey): a session is bounded like one API key.
   */
  maxRunningPerUser?: number | (() => number | Promise<number>);
  /** Events each running reply keeps for watchers that resume (see replyChannel.ts). */
  channelEvents?: number;
}

/** A stream with no write for this long belongs to a process that died (the config default). */
export const STALE_STREAM_MS = 30_000;
/**
 * Writes while nothing new arrives (e.g. waiting in the queue), so the stream never looks stale:
 * at most this far apart, and at least three times per stale window.
 */
const HEARTBEAT_MS = 5_000;
/** Retry hint sent with a busy error when the engine gives none. */
const DEFAULT_RETRY_AFTER_S = 5;

/**
 * Web-chat persistence over the serving pipeline: a reply is one pipeline completion whose
 * recorder stores the conversation's messages. The assistant message exists (status `streaming`)
 * once the request is admitted, before the first token; its partial text is written every
 * `flushIntervalMs`; its final state is written INSIDE the pipeline's settlement transaction (with
 * the ledger entry and the request log row), before `done` is sent. A process that dies
 * mid-stream leaves it `streaming`; `recover()` at the next start turns those into `interrupted`.
 */
export class ConversationReplies {
  private readonly active = new Map<string, { reply: Reply; userId: string | null; abort: AbortController; finished: Promise<Message | undefined> }>();
  /** Replies between the cap check and `active` (admission awaits): counted against the cap too. */
  private readonly starting = new Map<string, number>();
  private sweeper: NodeJS.Timeout | null = null;

  private readonly staleMs: number;

  constructor(private readonly opts: ConversationRepliesOptions) {
    this.staleMs = opts.staleStreamMs ?? STALE_STREAM_MS;
  }

  /**
   * Marks streams left over from a dead process as interrupted, now and every stale window. On
   * SQLite this process is the only server, so every leftover stream is dead at start; on
   * PostgreSQL other replicas may be streaming, so only stale ones are.
   */
  async recover(now = Date.now()): Promise<number> {
    const marked = await markInterrupted(this.opts.db, this.opts.dialect === "sqlite" ? now + 1 : now - this.staleMs);
    // First exchanges cut by the crash get the title they would have got had the answer ended.
    await titleInterrupted(this.opts.db).catch((err) => this.opts.logger?.error({ err }, "could not title interrupted conversations"));
    if (marked > 0) this.opts.logger?.info({ messages: marked }, "marked interrupted answers left by a previous run");
    // Later sweeps catch what other replicas (PostgreSQL) or a restart quicker than the stale window
    // left: those are marked now, and their first exchanges titled like the ones above.
    this.sweeper ??= setInterval(() => {
      markInterrupted(this.opts.db, Date.now() - this.staleMs)
        .then((swept) => (swept > 0 ? titleInterrupted(this.opts.db) : 0))
        .catch((err) => this.opts.logger?.error({ err }, "could not sweep stale streaming messages"));
    }, this.staleMs).unref();
    return marked;
  }

  /** The running reply that writes `messageId` in this process (undefined once it is stored). */
  running(messageId: string): Reply | undefined {
    return this.active.get(messageId)?.reply;
  }

  /** Replies running now for `userId`. */
  runningFor(userId: string): number {
    let n = this.starting.get(userId) ?? 0;
    for (const entry of this.active.values()) if (entry.userId === userId) n++;
    return n;
  }

  /**
   * Runs a started reply on its own: nobody has to read it (watchers attach to `reply.channel`).
   * Resolves when it is stored.
   */
  launch(reply: Reply): Promise<ReplyOutcome | undefined> {
    return reply.run().catch((err: unknown) => {
      this.opts.logger?.error({ err }, "conversation reply failed");
      return undefined;
    });
  }

  /** Stops a stream this process is generating and waits until its message is stored as stopped. */
  async stop(messageId: string): Promise<Message | undefined> {
    const entry = this.active.get(messageId);
    if (!entry) return findMessage(this.opts.db, messageId);
    entry.abort.abort();
    return entry.finished;
  }

  /**
   * Server shutdown: running replies get `drainMs` to finish, like API streams; those still running
   * then end as `interrupted` with a visible "server restarting" note (not as if the user had
   * pressed Stop). Waits until they are stored. Under `sputnik serve` the pipeline's own drain
   * (`Serving.drain`) has already finished or cut them by then, with the same outcome.
   */
  async close(drainMs = 0): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    const running = [...this.active.values()];
    const all = Promise.allSettled(running.map((e) => e.finished));
    if (drainMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))]);
      clearTimeout(timer);
    }
    for (const entry of running) entry.abort.abort(SHUTDOWN);
    await all;
  }

  /**
   * Starts a reply: runs the pipeline's admission stages (refusals are thrown before anything is
   * stored or sent) and stores the question and an empty, streaming answer.
   */
  async start(options: ReplyOptions): Promise<Reply> {
    const { conversation, input, generation } = options;
    const actor = options.actor ?? LOCAL;
    const userId = actor.kind === "user" ? actor.userId : null;
    const limit = this.opts.maxRunningPerUser ?? 0;
    const cap = typeof limit === "number" ? limit : await limit();
    if (userId !== null && cap > 0 && this.runningFor(userId) >= cap) {
      throw new ServiceError("rate_limited", `You have ${cap} answers being written already; wait for one to finish or stop one.`, {
        code: "too_many_answers",
        retryAfterS: DEFAULT_RETRY_AFTER_S,
      });
    }
    // Aborted by `stop`, at shutdown, or by the caller's own signal when it passed one.
    const abort = new AbortController();
    const clientSignal = generation.signal;
    const onClientGone = () => abort.abort();
    clientSignal?.addEventListener("abort", onClientGone, { once: true });
    if (clientSignal?.aborted) abort.abort();
    const reply = new Reply(this.opts, this.staleMs, options, abort, () => clientSignal?.removeEventListener("abort", onClientGone));
    if (userId !== null) this.starting.set(userId, (this.starting.get(userId) ?? 0) + 1);
    try {
      reply.completion = await this.opts.serving.start({
        actor,
        identity: options.identity ?? identityOf(actor, options.clientIp ?? null),
        clientIp: options.clientIp ?? null,
        generation: { ...generation, signal: abort.signal, routingKey: conversation.id },
        stream: true,
        onQueue: (update) => reply.queued(update),
        recorder: reply.recorder(conversation, input),
        ...(options.retrieval ? { retrieval: options.retrieval } : {}),
      });
    } catch (error) {
      reply.dispose();
      throw error;
    } finally {
      if (userId !== null) {
        const left = (this.starting.get(userId) ?? 1) - 1;
        if (left > 0) this.starting.set(userId, left);
        else this.starting.delete(userId);
      }
    }
    const assistant = reply.assistant!;
    this.active.set(assistant.id, { reply, userId, abort, finished: reply.finished.then((o) => o?.message, () => undefined) });
    void reply.finished.finally(() => this.active.delete(assistant.id)).catch(() => undefined);
    return reply;
  }

  /** start + run, for callers with nothing to do in between (tests, the CLI). */
  async reply(options: ReplyOptions & { emit?: (event: ReplyEvent) => void }): Promise<ReplyOutcome> {
    const reply = await this.start(options);
    return reply.run(options.emit);
  }
}

/** The abort reason of a reply cut short by server shutdown. */
const SHUTDOWN = new Error("server shutting down");

/** One reply: started (stored, admitted); `run` streams and stores it. */
export class Reply {
  completion: Completion | undefined;
  userMessage: Message | null = null;
  question: Message | undefined;
  assistant: Message | undefined;
  private writer: PartialWriter | undefined;
  /** The reply's live events, for any number of watchers (none needed: the reply runs on its own). */
  readonly channel: ReplyChannel<ReplyEvent>;
  private queuePlace: QueueUpdate | null = null;
  private title: string | null = null;
  private firstTokenAt: number | null = null;
  private reasoningStartedAt: number | null = null;
  private reasoningEndedAt: number | null = null;
  private final: Message | undefined;
  private failure: ReplyError | null = null;
  private readonly started = performance.now();
  private resolveFinished!: (outcome: ReplyOutcome | undefined) => void;
  /** Resolves once the answer is stored (undefined when it never was). */
  readonly finished = new Promise<ReplyOutcome | undefined>((resolve) => (this.resolveFinished = resolve));

  constructor(
    private readonly opts: ConversationRepliesOptions,
    private readonly staleMs: number,
    private readonly options: ReplyOptions,
    private readonly abort: AbortController,
    readonly dispose: () => void,
  ) {
    this.channel = new ReplyChannel<ReplyEvent>(() => this.snapshot(), opts.channelEvents ?? DEFAULT_CHANNEL_EVENTS);
  }

  private emit(event: ReplyEvent): void {
    this.channel.publish(event, event.type === "done" || event.type === "error" || event.type === "title");
  }

  /** The admission queue's news: the place in line and the wait, as the line moves. */
  queued(update: QueueUpdate): void {
    this.queuePlace = update;
    this.emit({ type: "queue", position: update.position, estimated_wait_s: update.estimatedWaitS });
  }

  /** The answer as it stands, for a watcher attaching mid-stream (a reload, another tab). */
  snapshot(): ReplyEvent {
    const now = performance.now();
    const assistant = this.assistant!;
    const message: Message = this.final ?? {
      ...assistant,
      content: this.writer?.content ?? "",
      reasoning: this.writer?.reasoning ?? "",
      reasoning_ms: this.reasoningMs(now),
      moderation: storedModeration(this.completion?.moderation ?? null),
      sources: storedSources(this.completion?.retrieval?.sources),
    };
    const place = this.firstTokenAt === null ? (this.completion?.position() ?? this.queuePlace) : null;
    return {
      type: "snapshot",
      message,
      queue: place ? { position: place.position, estimated_wait_s: place.estimatedWaitS } : null,
      reasoning_ms: this.reasoningMs(now),
      reasoning_done: this.reasoningEndedAt !== null,
    };
  }

  /** Reasoning time so far (final once the answer started); null before any reasoning. */
  private reasoningMs(now: number): number | null {
    if (this.reasoningStartedAt === null) return null;
    return Math.round((this.reasoningEndedAt ?? now) - this.reasoningStartedAt);
  }

  /** The conversation this reply answers in. */
  get conversationId(): string {
    return this.options.conversation.id;
  }

  /** The place in line now (null when running). */
  position(): QueueUpdate | null {
    return this.completion?.position() ?? null;
  }

  /** x-ratelimit-* figures for the response. */
  get headers(): Record<string, string> {
    return this.completion?.headers ?? {};
  }

  /** The pipeline's hooks: store the messages at start, partial text as it streams, the final state at settlement. */
  recorder(conversation: Conversation, input: ReplyInput): CompletionRecorder {
    const { db } = this.opts;
    const model = this.options.generation.model;
    return {
      started: async (modelInfo) => {
        const thinking = this.options.generation.thinking !== false && modelInfo.reasoning;
        if (input.kind === "send") {
          this.userMessage = await insertMessage(db, {
            conversationId: conversation.id,
            parentId: input.parentId,
            role: "user",
            content: input.content,
            status: "complete",
          });
          this.question = this.userMessage;
          this.assistant = await this.newAssistant(conversation.id, this.question, model, thinking);
        } else {
          const parent = this.options.messages.find((m) => m.id === input.target.parent_id);
          if (!parent) throw new Error(`message ${input.target.id} has no question to answer again`);
          this.question = parent;
          this.assistant = isEmptyFailure(input.target)
            ? await this.resetAssistant(input.target, model, thinking)
            : await this.newAssistant(conversation.id, this.question, model, thinking);
        }
        await updateConversation(db, conversation.id, { current_message_id: this.assistant.id, model, updated_at: Date.now() });
        // Heartbeats start now: a reload while the reply waits in line shows it as being written.
        this.writer = new PartialWriter(
          db,
          this.assistant.id,
          this.opts.flushIntervalMs ?? 500,
          Math.min(HEARTBEAT_MS, this.staleMs / 3),
          // Stored as it grows, so an answer cut by a crash still says how long it thought.
          () => this.reasoningMs(performance.now()),
          (err) => this.opts.logger?.error({ err }, "could not store partial answer"),
        );
      },
      event: (event) => this.onEvent(event),
      moderationTarget: () => ({ conversationId: conversation.id, messageId: this.assistant?.id ?? null }),
      beforeSettle: async () => {
        await this.writer?.stop();
      },
      settle: async (trx, outcome) => {
        if (!this.assistant || !this.writer) return;
        const end = performance.now();
        if (this.reasoningStartedAt !== null) this.reasoningEndedAt ??= end;
        // Ended by the server's shutdown: aborted here (ConversationReplies.close), cut by the
        // pipeline's drain at shutdownTimeoutMs, or refused while it waited in the drained queue.
        const aborted = outcome.status === 499 || outcome.finishReason === "abort";
        const shutdown = isShutdownError(outcome.error) || (this.abort.signal.reason === SHUTDOWN && aborted);
        const generated = this.writer.content !== "" || this.writer.reasoning !== "" || outcome.usage.completion_tokens > 0;
        this.failure = shutdown ? (generated ? SHUTDOWN_FAILURE : SHUTDOWN_BEFORE_START) : outcome.error != null ? describeFailure(outcome) : null;
        // Cut with nothing written it is an error, which a retry replaces rather than branching from.
        const status = shutdown ? (generated ? "interrupted" : "error") : this.failure ? "error" : aborted ? "stopped" : "complete";
        const final: MessagePatch = {
          status,
          error: this.failure?.message ?? null,
          content: this.writer.content,
          reasoning: this.writer.reasoning,
          prompt_tokens: outcome.usage.prompt_tokens,
          completion_tokens: outcome.usage.completion_tokens,
          reasoning_tokens: outcome.usage.completion_tokens_details.reasoning_tokens,
          ttft_ms: this.firstTokenAt === null ? null : Math.round(this.firstTokenAt - this.started),
          reasoning_ms: this.reasoningStartedAt === null ? null : Math.round(this.reasoningEndedAt! - this.reasoningStartedAt),
          total_ms: Math.round(end - this.started),
          updated_at: Date.now(),
          // Stored with the text it applies to: what was shown before a withhold stays, behind its notice.
          moderation: storedModeration(outcome.moderation),
          // What the answer cites, so the numbered chips show after a reload too.
          sources: storedSources(this.completion?.retrieval?.sources),
        };
        await updateMessage(trx, this.assistant.id, final);
        this.final = { ...this.assistant, ...final } as Message;
        // The first exchange names the conversation, in the same transaction: a shutdown right
        // after the answer cannot leave it "New chat".
        const { conversation } = this.options;
        if (conversation.title === null && this.question?.parent_id === null && status !== "error") {
          this.title = titleFromExchange(this.question.content, this.writer.content);
          await updateConversation(trx, conversation.id, { title: this.title });
        }
      },
    };
  }

  /**
   * Streams the reply to `emit`: `start`, the place in line, reasoning and content, then — after
   * the answer, the ledger entry and the request log committed together — `done` (or `error`),
   * and the conversation's title after its first exchange.
   */
  async run(emit?: (event: ReplyEvent) => void): Promise<ReplyOutcome> {
    // Seq 0: everything from the first event on, with no snapshot before it.
    const unwatch = emit ? this.channel.subscribe({ event: (entry) => emit(entry.event), end: () => undefined }, 0) : () => undefined;
    try {
      return await this.runOwn();
    } finally {
      this.channel.end();
      unwatch();
    }
  }

  private async runOwn(): Promise<ReplyOutcome> {
    const emit = (event: ReplyEvent) => this.emit(event);
    const completion = this.completion!;
    let thrown: unknown = null;
    try {
      emit({ type: "start", user_message: this.userMessage, assistant_message: this.assistant! });
      // What search found, before the reasoning: "Searched N pages" and the sources while it thinks.
      const retrieval = completion.retrieval;
      if (retrieval) emit({ type: "sources", sources: retrieval.sources, searched: retrieval.searched });
      // Show the place in line as soon as the answer exists; updates follow from onQueue.
      const place = completion.position();
      if (place) this.queued(place);
      for await (const event of completion.events()) {
        if (event.type === "error") thrown ??= event.error;
      }
    } catch (error) {
      thrown = error;
    } finally {
      this.dispose();
    }
    try {
      const outcome = completion.outcome!;
      // A settlement that could not commit rolled back the final answer too: what is stored is the
      // streaming row (it turns `interrupted` once stale), and the user is told.
      const unsettled = thrown instanceof ServiceError && thrown.code === "settlement_failed" ? thrown : null;
      const stored = unsettled || !this.final ? await findMessage(this.opts.db, this.assistant!.id).catch(() => undefined) : undefined;
      const message = (unsettled ? stored : this.final) ?? stored ?? this.assistant!;
      const failure = unsettled
        ? { message: unsettled.message, code: "settlement_failed", status: 503, retry_after_s: unsettled.retryAfterS ?? DEFAULT_RETRY_AFTER_S }
        : (this.failure ?? (thrown !== null && outcome.status !== 499 ? describeFailure({ ...outcome, error: thrown }) : null));
      if (failure) emit({ type: "error", error: failure, message });
      else emit({ type: "done", message });
      const result: ReplyOutcome = {
        message,
        usage: outcome.usage,
        status: unsettled ? 503 : outcome.status,
        errorCode: unsettled ? "settlement_failed" : outcome.errorCode,
        ttftMs: message.ttft_ms ?? null,
        totalMs: message.total_ms ?? outcome.totalMs,
      };
      if (this.title !== null && !unsettled) emit({ type: "title", conversation_id: this.options.conversation.id, title: this.title });
      this.resolveFinished(result);
      return result;
    } finally {
      // Whatever happened above, nobody waits for this reply for ever (`stop`, shutdown).
      this.resolveFinished(undefined);
    }
  }

  /** Settles a reply that will never run (its surface failed between `start` and `run`). */
  async abandon(): Promise<void> {
    this.dispose();
    await this.completion?.abandon();
    this.resolveFinished(undefined);
  }

  private onEvent(event: EngineEvent): void {
    const writer = this.writer;
    if (!writer) return;
    const now = performance.now();
    if ((event.type === "reasoning" || event.type === "content") && this.firstTokenAt === null) this.firstTokenAt = now;
    if (event.type === "reasoning") {
      this.reasoningStartedAt ??= now;
      writer.reasoning += event.text;
      this.emit({ type: "reasoning", text: event.text });
    } else if (event.type === "content") {
      if (this.reasoningStartedAt !== null) this.reasoningEndedAt ??= now;
      writer.content += event.text;
      this.emit({ type: "content", text: event.text });
    }
  }

  private newAssistant(conversationId: string, question: Message, model: string, thinking: boolean): Promise<Message> {
    // Ids order only by millisecond: a later millisecond keeps every answer listed after its question.
    const now = Math.max(Date.now(), question.created_at + 1);
    return insertMessage(this.opts.db, { conversationId, parentId: question.id, role: "assistant", model, thinking, status: "streaming", now });
  }

  /** Retrying an answer that failed before writing anything reuses it, so retries leave no empty branches. */
  private async resetAssistant(target: Message, model: string, thinking: boolean): Promise<Message> {
    const patch = {
      ...EMPTY_ANSWER,
      status: "streaming",
      model,
      thinking: thinking ? 1 : 0,
      moderation: null,
      updated_at: Date.now(),
    } satisfies MessagePatch;
    await updateMessage(this.opts.db, target.id, patch);
    return { ...target, ...patch };
  }
}

const SHUTDOWN_FAILURE: ReplyError = {
  message: "The server restarted while this answer was being written. Regenerate it to try again.",
  code: "server_restarting",
  status: 503,
  retry_after_s: DEFAULT_RETRY_AFTER_S,
};

const SHUTDOWN_BEFORE_START: ReplyError = {
  message: "The server restarted before this answer began. Regenerate it to try again.",
  code: "server_restarting",
  status: 503,
  retry_after_s: DEFAULT_RETRY_AFTER_S,
};

/** An answer that failed before producing any text: retrying it replaces it rather than branching. */
function isEmptyFailure(message: Message): boolean {
  return message.role === "assistant" && message.status === "error" && message.content === "" && message.reasoning === "";
}

/** An answer's moderation as stored with it: what users see (src/presenters/moderation.ts), as JSON. */
function storedModeration(report: ModerationReport | null): string | null {
  return report ? JSON.stringify(presentModeration(report)) : null;
}

/** The thread as the model sees it: earlier reasoning is never fed back. */
function toPrompt(thread: Message[]): ChatMessage[] {
  return thread.map((m) => ({ role: m.role, content: m.content }));
}

/**
 * The user-facing words for a failed reply, from the pipeline's outcome (its status is the one the
 * transport would have answered with); busy ones get a retry hint. Server faults show no detail.
 */
function describeFailure(outcome: Pick<CompletionOutcome, "status" | "errorCode" | "error">): ReplyError {
  const status = outcome.status >= 400 && outcome.status <= 599 ? outcome.status : 500;
  const error = outcome.error;
  const code = outcome.errorCode ?? "internal_error";
  if (status === 503 || status === 429) {
    const retryAfter = error instanceof ServiceError ? error.retryAfterS : undefined;
    return { message: "The server is busy.", code, status, retry_after_s: retryAfter !== undefined && retryAfter > 0 ? Math.ceil(retryAfter) : DEFAULT_RETRY_AFTER_S };
  }
  if (status >= 500 && !(error instanceof EngineError)) {
    return { message: "The answer failed because of a server error.", code: "internal_error", status: 500 };
  }
  const message = error instanceof Error && error.message ? error.message : "The answer failed.";
  return { message, code, status };
}

/**
 * Keeps the stored copy of a streaming answer close to the live one: writes the text every
 * `intervalMs` when it changed, and touches the row every `heartbeatMs` when it did not. One write at
 * a time; `finish` waits for the one in flight, then stores the final state.
 */
class PartialWriter {
  content = "";
  reasoning = "";
  private written = { content: "", reasoning: "" };
  private lastWrite = Date.now();
  private inFlight: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly id: string,
    intervalMs: number,
    private readonly heartbeatMs: number,
    private readonly reasoningMs: () => number | null,
    private readonly onError: (err: unknown) => void,
  ) {
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  private tick(): void {
    const changed = this.content !== this.written.content || this.reasoning !== this.written.reasoning;
    if (!changed && Date.now() - this.lastWrite < this.heartbeatMs) return;
    const snapshot = { content: this.content, reasoning: this.reasoning };
    this.lastWrite = Date.now();
    this.inFlight = this.inFlight
      .then(() => updateMessage(this.db, this.id, changed ? { ...snapshot, reasoning_ms: this.reasoningMs() } : {}))
      .then(() => {
        this.written = snapshot;
      }, this.onError);
  }

  /**
   * Stops writing and waits for the write in flight — before the settlement transaction opens: on
   * SQLite's single connection a write outside it would otherwise wait for it forever.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
  }
}

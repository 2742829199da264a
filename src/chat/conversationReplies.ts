import type { Kysely, Transaction } from "kysely";
import type { ModelRouter } from "../engines/router.ts";
import { EngineError, emptyUsage, type ChatMessage, type FinishReason, type GenerationRequest, type Usage } from "../engines/types.ts";
import type { Dialect } from "../store/database.ts";
import type { Database } from "../store/schema.ts";
import { titleFromExchange } from "./conversationTitle.ts";
import {
  findMessage,
  insertMessage,
  markInterrupted,
  updateConversation,
  updateMessage,
  type Conversation,
  type Message,
  type MessagePatch,
} from "./conversations.ts";
import { pathTo } from "./messageTree.ts";

/** What the web app's streaming endpoint sends, one JSON object per SSE `data:` line. */
export type ReplyEvent =
  | { type: "start"; user_message: Message | null; assistant_message: Message }
  /** While the request waits for a free slot (sent by the admission queue when there is one). */
  | { type: "queue"; position: number; estimated_wait_s: number }
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  | { type: "title"; conversation_id: string; title: string }
  | { type: "done"; message: Message }
  | { type: "error"; error: ReplyError; message: Message };

export interface ReplyError {
  message: string;
  code: string;
  /** The HTTP status the same failure would have had before streaming began (503 = busy). */
  status: number;
  /** Seconds after which a retry may succeed (busy or rate-limited). */
  retry_after_s?: number;
}

/** Either a new user message after `parentId`, or another answer to the user message `target` answers. */
export type ReplyInput =
  | { kind: "send"; content: string; parentId: string | null }
  | { kind: "regenerate"; target: Message };

export interface ReplyOptions {
  conversation: Conversation;
  /** Every message of the conversation (the route loaded them to validate the input). */
  messages: Message[];
  input: ReplyInput;
  /**
   * What to generate: built by `replyGeneration` (then possibly tightened by billing). Its signal
   * is the client's: aborted when the client goes away.
   */
  generation: GenerationRequest;
  /** Resolves when the request may run (its turn in the admission queue); rejects to give up. */
  ready?: Promise<void>;
  emit: (event: ReplyEvent) => void;
  /**
   * Billing's settlement, run inside the transaction that stores the final answer, so the stored
   * message, the ledger row and the balance change commit (or vanish) together.
   */
  settle?: (trx: Transaction<Database>, outcome: { status: number; usage: Usage }) => Promise<void>;
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
 */
export function replyGeneration(
  messages: Message[],
  input: ReplyInput,
  options: { model: string; thinking: boolean; signal: AbortSignal },
): GenerationRequest {
  const thread =
    input.kind === "send"
      ? [...toPrompt(pathTo(messages, input.parentId)), { role: "user" as const, content: input.content }]
      : toPrompt(pathTo(messages, input.target.parent_id));
  return { model: options.model, messages: thread, ...(options.thinking ? {} : { thinking: false }), signal: options.signal };
}

export interface ConversationRepliesOptions {
  db: Kysely<Database>;
  router: ModelRouter;
  dialect: Dialect;
  /** How often streamed text is written to the store (a crash loses at most this much). */
  flushIntervalMs?: number;
  /** When a stream with no write counts as dead (default STALE_STREAM_MS); see src/chat/config.ts. */
  staleStreamMs?: number;
  logger?: { error(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
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
 * Generates assistant replies in conversations and stores them as they stream: the assistant message
 * exists (status `streaming`) before the first token, its partial text is written every
 * `flushIntervalMs`, and it ends `complete`, `stopped` or `error`. A process that dies mid-stream
 * leaves it `streaming`; `recover()` at the next start turns those into `interrupted`.
 */
export class ConversationReplies {
  private readonly active = new Map<string, { abort: AbortController; finished: Promise<Message | undefined> }>();
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
    if (marked > 0) this.opts.logger?.info({ messages: marked }, "marked interrupted answers left by a previous run");
    this.sweeper ??= setInterval(() => {
      markInterrupted(this.opts.db, Date.now() - this.staleMs).catch((err) =>
        this.opts.logger?.error({ err }, "could not sweep stale streaming messages"),
      );
    }, this.staleMs).unref();
    return marked;
  }

  /** Stops a stream this process is generating and waits until its message is stored as stopped. */
  async stop(messageId: string): Promise<Message | undefined> {
    const entry = this.active.get(messageId);
    if (!entry) return findMessage(this.opts.db, messageId);
    entry.abort.abort();
    return entry.finished;
  }

  /** Aborts every running stream (server shutdown) and waits for them to be stored. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    const running = [...this.active.values()];
    for (const entry of running) entry.abort.abort();
    await Promise.allSettled(running.map((e) => e.finished));
  }

  /** Runs one reply to the end, emitting events as it goes; resolves once the answer is stored. */
  async reply(options: ReplyOptions): Promise<ReplyOutcome> {
    const { db } = this.opts;
    const { conversation, input, generation } = options;
    const modelInfo = this.opts.router.model(generation.model);
    const thinking = generation.thinking !== false && (modelInfo?.reasoning ?? false);

    let userMessage: Message | null = null;
    let question: Message;
    let assistant: Message;
    if (input.kind === "send") {
      userMessage = await insertMessage(db, {
        conversationId: conversation.id,
        parentId: input.parentId,
        role: "user",
        content: input.content,
        status: "complete",
      });
      question = userMessage;
      assistant = await this.newAssistant(conversation.id, question, generation.model, thinking);
    } else {
      const parent = options.messages.find((m) => m.id === input.target.parent_id);
      if (!parent) throw new Error(`message ${input.target.id} has no question to answer again`);
      question = parent;
      assistant = isEmptyFailure(input.target)
        ? await this.resetAssistant(input.target, generation.model, thinking)
        : await this.newAssistant(conversation.id, question, generation.model, thinking);
    }
    await updateConversation(db, conversation.id, { current_message_id: assistant.id, model: generation.model, updated_at: Date.now() });
    options.emit({ type: "start", user_message: userMessage, assistant_message: assistant });

    // Aborted by the client leaving (the generation's own signal) or by `stop`.
    const abort = new AbortController();
    const clientSignal = generation.signal;
    const onClientGone = () => abort.abort();
    clientSignal?.addEventListener("abort", onClientGone, { once: true });
    if (clientSignal?.aborted) abort.abort();
    const finished = this.generate(assistant, { ...generation, signal: abort.signal }, options.ready, options.emit, options.settle);
    this.active.set(assistant.id, { abort, finished: finished.then((o) => o.message, () => undefined) });
    try {
      const outcome = await finished;
      if (conversation.title === null && question.parent_id === null && outcome.message.status !== "error") {
        const title = titleFromExchange(question.content, outcome.message.content);
        await updateConversation(db, conversation.id, { title });
        options.emit({ type: "title", conversation_id: conversation.id, title });
      }
      return outcome;
    } finally {
      this.active.delete(assistant.id);
      clientSignal?.removeEventListener("abort", onClientGone);
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
      status: "streaming",
      error: null,
      model,
      thinking: thinking ? 1 : 0,
      content: "",
      reasoning: "",
      prompt_tokens: 0,
      completion_tokens: 0,
      reasoning_tokens: 0,
      ttft_ms: null,
      reasoning_ms: null,
      total_ms: null,
      updated_at: Date.now(),
    } satisfies MessagePatch;
    await updateMessage(this.opts.db, target.id, patch);
    return { ...target, ...patch };
  }

  private async generate(
    assistant: Message,
    generation: GenerationRequest,
    ready: Promise<void> | undefined,
    emit: (event: ReplyEvent) => void,
    settle: ReplyOptions["settle"],
  ): Promise<ReplyOutcome> {
    const signal = generation.signal!;
    const started = performance.now();
    const writer = new PartialWriter(this.opts.db, assistant.id, this.opts.flushIntervalMs ?? 500, Math.min(HEARTBEAT_MS, this.staleMs / 3), (err) =>
      this.opts.logger?.error({ err }, "could not store partial answer"),
    );
    let firstTokenAt: number | null = null;
    let reasoningStartedAt: number | null = null;
    let reasoningEndedAt: number | null = null;
    let usage: Usage | null = null;
    let finishReason: FinishReason | null = null;
    let failure: ReplyError | null = null;
    try {
      // Waiting in line happens here, after the message exists: a reload shows it as being written.
      await ready;
      if (signal.aborted) throw signal.reason;
      const events = this.opts.router.generate(generation);
      for await (const event of events) {
        const now = performance.now();
        if ((event.type === "reasoning" || event.type === "content") && firstTokenAt === null) firstTokenAt = now;
        if (event.type === "reasoning") {
          reasoningStartedAt ??= now;
          writer.reasoning += event.text;
          emit({ type: "reasoning", text: event.text });
        } else if (event.type === "content") {
          if (reasoningStartedAt !== null) reasoningEndedAt ??= now;
          writer.content += event.text;
          emit({ type: "content", text: event.text });
        } else if (event.type === "usage") {
          usage = event.usage;
        } else if (event.type === "done") {
          finishReason = event.finishReason;
        } else if (event.type === "error") {
          throw event.error;
        }
      }
    } catch (error) {
      if (!signal.aborted) failure = describeFailure(error);
    }
    const end = performance.now();
    if (reasoningStartedAt !== null) reasoningEndedAt ??= end;
    const status = failure ? "error" : signal.aborted || finishReason === "abort" ? "stopped" : "complete";
    const final: MessagePatch = {
      status,
      error: failure?.message ?? null,
      content: writer.content,
      reasoning: writer.reasoning,
      prompt_tokens: usage?.prompt_tokens ?? 0,
      completion_tokens: usage?.completion_tokens ?? 0,
      reasoning_tokens: usage?.completion_tokens_details.reasoning_tokens ?? 0,
      ttft_ms: firstTokenAt === null ? null : Math.round(firstTokenAt - started),
      reasoning_ms: reasoningStartedAt === null ? null : Math.round(reasoningEndedAt! - reasoningStartedAt),
      total_ms: Math.round(end - started),
      updated_at: Date.now(),
    };
    const httpStatus = failure ? failure.status : status === "stopped" ? 499 : 200;
    const settleUsage = usage ?? emptyUsage();
    await writer.finish(final, settle ? (trx) => settle(trx, { status: httpStatus, usage: settleUsage }) : undefined);
    const message = { ...assistant, ...final } as Message;
    if (failure) emit({ type: "error", error: failure, message });
    else emit({ type: "done", message });
    return {
      message,
      usage: usage ?? emptyUsage(),
      status: httpStatus,
      errorCode: failure?.code ?? null,
      ttftMs: final.ttft_ms ?? null,
      totalMs: final.total_ms ?? 0,
    };
  }
}

/** An answer that failed before producing any text: retrying it replaces it rather than branching. */
function isEmptyFailure(message: Message): boolean {
  return message.role === "assistant" && message.status === "error" && message.content === "" && message.reasoning === "";
}

/** The thread as the model sees it: earlier reasoning is never fed back. */
function toPrompt(thread: Message[]): ChatMessage[] {
  return thread.map((m) => ({ role: m.role, content: m.content }));
}

/**
 * The user-facing words for a failed reply. Engine errors (EngineError) and refusals from the
 * admission queue (ApiError) both carry an HTTP status and a code; busy ones get a retry hint.
 */
function describeFailure(error: unknown): ReplyError {
  const e = error as { status?: unknown; code?: unknown; message?: unknown; headers?: Record<string, string> };
  const status = typeof e?.status === "number" && e.status >= 400 && e.status <= 599 ? e.status : 500;
  const code = typeof e?.code === "string" ? e.code : "internal_error";
  if (status === 503 || status === 429) {
    const retryAfter = Number(e.headers?.["retry-after"] ?? e.headers?.["Retry-After"]);
    return { message: "The server is busy.", code, status, retry_after_s: retryAfter > 0 ? Math.ceil(retryAfter) : DEFAULT_RETRY_AFTER_S };
  }
  if (status >= 500 && !(error instanceof EngineError)) {
    return { message: "The answer failed because of a server error.", code: "internal_error", status: 500 };
  }
  return { message: typeof e.message === "string" && e.message ? e.message : "The answer failed.", code, status };
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
      .then(() => updateMessage(this.db, this.id, changed ? snapshot : {}))
      .then(() => {
        this.written = snapshot;
      }, this.onError);
  }

  async finish(final: MessagePatch, alsoInTransaction?: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
    clearInterval(this.timer);
    await this.inFlight;
    if (!alsoInTransaction) return updateMessage(this.db, this.id, final);
    await this.db.transaction().execute(async (trx) => {
      await updateMessage(trx, this.id, final);
      await alsoInTransaction(trx);
    });
  }
}

import type { FastifyInstance, FastifyReply } from "fastify";
import { emptyUsage, type EngineEvent, type FinishReason, type ToolCall, type Usage } from "../../engines/types.ts";
import { contentBlocks, messageId, presentMessage, presentMessageDelta, presentMessageStart } from "../../presenters/anthropic.ts";
import type { Completion, Serving } from "../../serving/completion.ts";
import { Exchange, serveCompletions } from "../completionRoute.ts";
import { toApiError } from "../errors.ts";
import { SseWriter } from "../sse.ts";
import { BlockStream } from "./blockStream.ts";
import { anthropicErrorBody } from "./errors.ts";
import { toGenerationRequest } from "./generationRequest.ts";
import { messagesSchema, type MessagesBody } from "./messagesSchema.ts";

/** How often a quiet stream (waiting in line, or a long prompt being read) gets a `ping` event. */
export const DEFAULT_PING_MS = 10_000;

/**
 * POST /anthropic/v1/messages: Anthropic's Messages API as an adapter over the ONE serving pipeline
 * (src/serving/completion.ts), exactly as /v1/chat/completions is — same auth, policies, limits,
 * queue, metering and settlement; only the parsing and the presenting differ. Refusals before any
 * byte answer with their status in Anthropic's error shape; after the first byte an `error` event
 * ends the stream. `message_stop` goes out only after the pipeline committed the settlement.
 */
export function registerMessages(scope: FastifyInstance, deps: { serving: Serving; pingMs?: number }): void {
  serveCompletions(scope, ["/v1/messages"], {}, deps.serving, {
    parse: (body) => messagesSchema.parse(body),
    generation: (body, signal) => toGenerationRequest(body, signal),
    exchange: (reply, clientGone) => new MessagesExchange(reply, clientGone, deps.pingMs ?? DEFAULT_PING_MS),
  });
}

/** One answer to one completion: a JSON message, or Anthropic's event stream. */
class MessagesExchange extends Exchange<MessagesBody> {
  private sse: SseWriter | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private lastWrite = 0;

  constructor(
    reply: FastifyReply,
    clientGone: AbortSignal,
    private readonly pingMs: number,
  ) {
    super(reply, clientGone);
  }

  protected get streaming(): boolean {
    return this.sse !== undefined;
  }

  /** Anthropic's keep-alive while a stream waits in line is a `ping` event (its SDK skips them). */
  queued(): void {
    this.ping();
  }

  override finished(): void {
    clearInterval(this.pinger);
  }

  protected async respond(completion: Completion, body: MessagesBody, events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>): Promise<unknown> {
    const id = messageId();
    const notices = () => completion.moderation?.interventions.map((i) => i.notice) ?? [];
    if (body.stream !== true) return this.json(events, first, id, body.model, notices);
    await this.stream(events, first, id, body.model, completion.headers, completion.promptTokens, notices);
    return undefined;
  }

  private async json(events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>, id: string, model: string, notices: () => string[]): Promise<unknown> {
    const answer = new Answer();
    for (let step = first; !step.done; step = await events.next()) {
      if (step.value.type === "error") throw toApiError(step.value.error);
      answer.note(step.value);
    }
    return presentMessage({
      id,
      model,
      content: contentBlocks({ reasoning: answer.reasoning, content: answer.content, toolCalls: answer.toolCalls(), notices: notices() }),
      finishReason: answer.finishReason,
      stopSequence: answer.stopSequence,
      usage: answer.usage,
    });
  }

  private async stream(
    events: AsyncGenerator<EngineEvent>,
    first: IteratorResult<EngineEvent>,
    id: string,
    model: string,
    headers: Record<string, string>,
    promptTokens: number | undefined,
    notices: () => string[],
  ): Promise<void> {
    this.openStream(headers);
    this.write("message_start", presentMessageStart({ id, model, promptTokens: promptTokens ?? 0 }));
    const blocks = new BlockStream((name, data) => this.write(name, data));
    const answer = new Answer();
    let failed = false;
    try {
      // Read to the end even when the client has left: the abort stops the engine, and the usage
      // of what it really generated arrives and is billed (a stopped request pays for its tokens).
      for (let step = first; !step.done; step = await events.next()) {
        const event = step.value;
        answer.note(event);
        if (event.type === "reasoning") blocks.reasoning(event.text);
        else if (event.type === "content") blocks.content(event.text);
        else if (event.type === "tool_call") blocks.toolCall(event.index, event.id, event.name);
        else if (event.type === "tool_call_arguments") blocks.toolArguments(event.index, event.text);
        else if (event.type === "error") {
          failed = true;
          this.fail(event.error);
        }
      }
    } catch (error) {
      failed = true;
      this.fail(error);
    }
    if (failed) return;
    // The pipeline has committed the settlement by now: only then is the message declared complete.
    blocks.notices(notices());
    blocks.finish();
    this.write("message_delta", presentMessageDelta({ finishReason: answer.finishReason, stopSequence: answer.stopSequence, usage: answer.usage }));
    this.write("message_stop", { type: "message_stop" });
    this.sse!.end();
  }

  protected openStream(headers: Record<string, string>): void {
    if (this.sse) return;
    this.reply.hijack();
    this.sse = new SseWriter(this.reply.raw);
    this.sse.open(headers);
    this.lastWrite = Date.now();
    // Pings also cover silences while running (a long prompt read before the first token).
    this.pinger = setInterval(() => {
      if (Date.now() - this.lastWrite >= this.pingMs) this.ping();
    }, this.pingMs);
    this.pinger.unref();
  }

  protected failStream(error: unknown): void {
    this.fail(error);
  }

  /** A `ping` event while a stream is open and quiet. */
  private ping(): void {
    this.write("ping", { type: "ping" });
  }

  /** After the first byte the status is sent: the error travels as an `error` event, which ends the stream. */
  private fail(error: unknown): void {
    this.finished();
    if (!this.sse || this.sse.closed) return;
    this.write("error", anthropicErrorBody(toApiError(error)));
    this.sse.end();
  }

  private write(name: string, data: unknown): void {
    if (!this.sse || this.sse.closed) return;
    this.lastWrite = Date.now();
    this.sse.event(name, data);
  }
}

/** What one answer amounted to, from its events. */
class Answer {
  reasoning = "";
  content = "";
  usage: Usage = emptyUsage();
  finishReason: FinishReason = "stop";
  stopSequence: string | undefined;
  private readonly calls = new Map<number, ToolCall>();

  note(event: EngineEvent): void {
    switch (event.type) {
      case "reasoning":
        this.reasoning += event.text;
        break;
      case "content":
        this.content += event.text;
        break;
      case "tool_call":
        this.calls.set(event.index, { id: event.id, name: event.name, arguments: "" });
        break;
      case "tool_call_arguments": {
        const call = this.calls.get(event.index);
        if (call) call.arguments += event.text;
        break;
      }
      case "usage":
        this.usage = event.usage;
        break;
      case "done":
        this.finishReason = event.finishReason;
        this.stopSequence = event.stopSequence;
        break;
    }
  }

  toolCalls(): ToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
  }
}

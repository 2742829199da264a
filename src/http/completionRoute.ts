import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EngineEvent, GenerationRequest } from "../engines/types.ts";
import type { QueueUpdate } from "../limits/admissionQueue.ts";
import { identityOf } from "../limits/identity.ts";
import type { Completion, Serving } from "../serving/completion.ts";
import type { RetrievalRequest } from "../search/types.ts";
import { toApiError } from "./errors.ts";

/**
 * What every completion surface (/v1/chat/completions, /v1/completions, /anthropic/v1/messages)
 * shares: the route's steps around the ONE serving pipeline. Each surface supplies only how its
 * body is parsed and mapped to a GenerationRequest, and how the answer is presented (an
 * `Exchange`), so auth, limits, queue, metering and settlement are one code path for all.
 */
export interface CompletionSurface<Body extends { stream?: boolean | null }> {
  parse(body: unknown): Body;
  generation(body: Body, signal: AbortSignal): GenerationRequest;
  /** The search the body asks for (web_search_options, file_ids); undefined: none. */
  retrieval?(body: Body): RetrievalRequest | undefined;
  exchange(reply: FastifyReply, clientGone: AbortSignal): Exchange<Body>;
}

/** Registers `surface` at each of `paths` on `app`. */
export function serveCompletions<Body extends { stream?: boolean | null }>(
  app: FastifyInstance,
  paths: readonly string[],
  routeConfig: Record<string, unknown>,
  serving: Serving,
  surface: CompletionSurface<Body>,
): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = surface.parse(request.body);
    const abort = new AbortController();
    // The response's "close" fires when the client goes away before we finished: stop generating.
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort(new Error("client disconnected"));
    });
    const exchange = surface.exchange(reply, abort.signal);
    const retrieval = surface.retrieval?.(body);
    let completion: Completion;
    try {
      completion = await serving.start({
        ...(retrieval ? { retrieval } : {}),
        actor: request.actor,
        identity: identityOf(request.actor, request.ip),
        clientIp: request.ip ?? null,
        generation: surface.generation(body, abort.signal),
        stream: body.stream === true,
        onQueue: (update) => exchange.queued(update),
      });
    } catch (error) {
      return exchange.refuse(error);
    }
    try {
      return await exchange.present(completion, body);
    } finally {
      exchange.finished();
      // However presenting ended (a write failed, the client left), the completion is settled.
      await completion.abandon();
    }
  };
  for (const path of paths) app.post(path, { config: routeConfig }, handler);
}

/**
 * One response to one completion: JSON, or a stream opened early when the request has to wait in
 * line (so the client hears from us while it waits). Subclasses write their surface's shapes.
 */
export abstract class Exchange<Body extends { stream?: boolean | null }> {
  constructor(
    protected readonly reply: FastifyReply,
    protected readonly clientGone: AbortSignal,
  ) {}

  /** Whether the stream is open (bytes went out: errors can no longer change the status). */
  protected abstract get streaming(): boolean;
  /** Opens the stream (hijacking the reply) if it is not open yet. */
  protected abstract openStream(headers: Record<string, string>): void;
  /** While a stream waits in line: the surface's keep-alive. */
  abstract queued(update: QueueUpdate | null): void;
  /** An error after the stream opened: the surface's error event, then the stream's end. */
  protected abstract failStream(error: unknown): void;
  /** Presents the events, from the first one on. */
  protected abstract respond(completion: Completion, body: Body, events: AsyncGenerator<EngineEvent>, first: IteratorResult<EngineEvent>): Promise<unknown>;

  /** Once presenting ended, however it ended (stop timers). */
  finished(): void {}

  /** A refusal before any byte: its status; a client that already left gets nothing. */
  refuse(error: unknown): undefined {
    if (this.clientGone.aborted) {
      if (!this.streaming) this.reply.hijack();
      this.reply.raw.destroy();
      return undefined;
    }
    throw toApiError(error);
  }

  async present(completion: Completion, body: Body): Promise<unknown> {
    this.reply.headers(completion.headers);
    if (completion.queued && body.stream === true) {
      this.openStream(completion.headers);
      this.queued(completion.position());
    }
    const events = completion.events();
    let first: IteratorResult<EngineEvent>;
    try {
      // Errors found before the first token (waiting timed out, a bad grammar) still get a status.
      first = await events.next();
    } catch (error) {
      if (!this.streaming) return this.refuse(error);
      this.failStream(error);
      return undefined;
    }
    return this.respond(completion, body, events, first);
  }
}

import type { ServerResponse } from "node:http";
import { countSseWrite, enterPhase, profiling } from "../engines/profile.ts";

/**
 * Server-sent events over a raw Node response. Fastify is bypassed once the stream starts
 * (reply.hijack), so headers set here are the ones the client sees.
 */
export class SseWriter {
  constructor(private readonly res: ServerResponse) {}

  open(extraHeaders: Record<string, string> = {}): void {
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // Tells nginx not to buffer the stream.
      "x-accel-buffering": "no",
      ...extraHeaders,
    });
    this.res.flushHeaders();
  }

  get started(): boolean {
    return this.res.headersSent;
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** `id`: the event's id, which a client may resume after (the web app's reply streams). */
  data(value: unknown, id?: number | string): void {
    if (this.closed) return;
    const leave = profiling ? (countSseWrite(), enterPhase("sse")) : null;
    this.res.write(`${id === undefined ? "" : `id: ${id}\n`}data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`);
    leave?.();
  }

  /** A named event (Anthropic's stream names each one: `event: message_start`, …). */
  event(name: string, value: unknown): void {
    if (this.closed) return;
    this.res.write(`event: ${name}\ndata: ${JSON.stringify(value)}\n\n`);
  }

  /** An SSE comment: ignored by clients, keeps proxies from timing the connection out. */
  comment(text: string): void {
    if (this.closed) return;
    this.res.write(`: ${text.replace(/\n/g, " ")}\n\n`);
  }

  end(): void {
    if (!this.closed) this.res.end();
  }

  /** Bytes written but not yet taken by the client's socket. */
  get unsent(): number {
    return this.res.writableLength;
  }
}

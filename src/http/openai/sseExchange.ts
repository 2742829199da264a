import type { QueueUpdate } from "../../limits/admissionQueue.ts";
import { Exchange } from "../completionRoute.ts";
import { errorBody, toApiError } from "../errors.ts";
import { SseWriter } from "../sse.ts";

/**
 * What the OpenAI-shaped surfaces (/v1/chat/completions, /v1/completions) share in streaming:
 * SSE data chunks, the place in line as a keep-alive comment, and an error after the first byte
 * as an error chunk followed by `[DONE]`. Subclasses write only their own chunk shapes.
 */
export abstract class OpenAiExchange<Body extends { stream?: boolean | null }> extends Exchange<Body> {
  /** Set once the stream is open (early, when the request waited in line, or at its first token). */
  protected stream: SseWriter | undefined;

  protected get streaming(): boolean {
    return this.stream !== undefined;
  }

  protected openStream(headers: Record<string, string>): void {
    if (this.stream) return;
    this.reply.hijack();
    this.stream = new SseWriter(this.reply.raw);
    this.stream.open(headers);
  }

  /** The place in line, as an SSE comment, while a stream waits. */
  queued(update: QueueUpdate | null): void {
    if (update) this.stream?.comment(`keep-alive queue_position=${update.position} estimated_wait_s=${update.estimatedWaitS}`);
  }

  protected failStream(error: unknown): void {
    this.stream!.data(errorBody(toApiError(error)));
    this.stream!.data("[DONE]");
    this.stream!.end();
  }
}

/**
 * Reads a response body chunk by chunk into an async consumer, keeping every byte that arrived.
 *
 * Why not `for await` or `pipeline`: when the connection drops, node destroys the response and
 * throws away what it had buffered but not yet handed out, and a piped write stream drops its own
 * queue on error. For a resumable download every received byte should reach the disk, so this
 * reader takes chunks in flowing mode as they arrive and hands all of them to `consume`, in
 * order, before reporting the error.
 */
import type { IncomingMessage } from "node:http";

/** Pause the socket when this much is waiting for `consume`; resume below half of it. */
const HIGH_WATER = 16 * 1024 * 1024;

export async function readBody(
  response: IncomingMessage,
  consume: (chunk: Buffer) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };

  const onAbort = () => {
    failure ??= new DOMException("The download was aborted", "AbortError");
    response.destroy();
    notify();
  };
  response.on("data", (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued > HIGH_WATER) response.pause();
    notify();
  });
  response.on("end", () => {
    ended = true;
    notify();
  });
  response.on("error", (error) => {
    failure ??= error;
    notify();
  });
  response.on("close", () => {
    if (!ended) failure ??= new Error("connection closed before the end of the body");
    notify();
  });
  // In case it ended or failed before these listeners were attached.
  if (response.readableEnded) ended = true;
  else if (response.destroyed) failure = response.errored ?? new Error("connection closed before the end of the body");
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();

  try {
    for (;;) {
      while (queue.length > 0) {
        const chunk = queue.shift()!;
        queued -= chunk.length;
        await consume(chunk);
        if (queued < HIGH_WATER / 2 && response.isPaused() && failure === null) response.resume();
      }
      if (failure !== null) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    response.destroy();
  }
}

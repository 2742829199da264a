import type { Server } from "node:http";
import type { Socket } from "node:net";
import { ApiError } from "../http/errors.ts";

export type HygieneRejection = "too_many_messages" | "message_too_long" | "connections_per_ip";

/**
 * Bounds on one chat request beyond the body size (Fastify's bodyLimit): how many messages, and
 * how long each may be. The schema has hard upper bounds; these are the operator's, usually lower.
 */
export function checkMessages(
  messages: ReadonlyArray<{ content?: string | null }>,
  limits: { maxMessages: number; maxMessageChars: number },
  onRejected: (reason: HygieneRejection) => void = () => undefined,
): void {
  if (messages.length > limits.maxMessages) {
    onRejected("too_many_messages");
    throw new ApiError(400, `Too many messages: ${messages.length}, the limit is ${limits.maxMessages}.`, "too_many_messages", "messages");
  }
  messages.forEach((message, index) => {
    const length = message.content?.length ?? 0;
    if (length > limits.maxMessageChars) {
      onRejected("message_too_long");
      throw new ApiError(
        400,
        `Message ${index} is ${length} characters long; the limit is ${limits.maxMessageChars}.`,
        "message_too_long",
        `messages[${index}].content`,
      );
    }
  });
}

/**
 * Slowloris guards on the raw server: a client must send its headers within `headersTimeoutMs`
 * (Fastify's requestTimeout bounds the whole request), and one address may hold at most
 * `maxPerIp` connections; extra ones are closed as they arrive, before any byte is read.
 */
export function guardConnections(
  server: Server,
  options: { maxPerIp: number; headersTimeoutMs: number },
  onRejected: (reason: HygieneRejection) => void = () => undefined,
): void {
  server.headersTimeout = options.headersTimeoutMs;
  if (options.maxPerIp === 0) return;
  const open = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const ip = socket.remoteAddress ?? "unknown";
    const count = open.get(ip) ?? 0;
    if (count >= options.maxPerIp) {
      onRejected("connections_per_ip");
      socket.destroy();
      return;
    }
    open.set(ip, count + 1);
    socket.once("close", () => {
      const left = (open.get(ip) ?? 1) - 1;
      if (left > 0) open.set(ip, left);
      else open.delete(ip);
    });
  });
}

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
 * Slowloris guards, as Fastify options: a client must send its headers within `headersTimeoutMs`
 * and its whole request within `requestTimeoutMs`, or gets 408 and is disconnected. Node checks
 * these deadlines periodically (every 30 s by default, which would stretch a 15 s limit to 45 s),
 * so the check runs at a fifth of the shorter one.
 */
export function httpTimeouts(limits: { headersTimeoutMs: number; requestTimeoutMs: number }): {
  requestTimeout: number;
  http: { headersTimeout: number; connectionsCheckingInterval: number };
} {
  const shorter = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    requestTimeout: limits.requestTimeoutMs,
    http: { headersTimeout: shorter, connectionsCheckingInterval: Math.max(200, Math.min(5000, Math.floor(shorter / 5))) },
  };
}

/**
 * One address may hold at most `maxPerIp` connections (0: no cap); extra ones are closed as they
 * arrive, before any byte is read, so a slowloris client cannot exhaust the server's sockets.
 */
export function capConnectionsPerIp(server: Server, maxPerIp: number, onRejected: (reason: HygieneRejection) => void = () => undefined): void {
  if (maxPerIp === 0) return;
  const open = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const ip = socket.remoteAddress ?? "unknown";
    const count = open.get(ip) ?? 0;
    if (count >= maxPerIp) {
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

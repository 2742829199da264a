import type { Server } from "node:http";
import type { Socket } from "node:net";

export type ConnectionRejection = "connections_per_ip";

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
 * Works on the Node server itself (`app.server`): a connection exists before any request does.
 */
export function capConnectionsPerIp(server: Server, maxPerIp: number, onRejected: (reason: ConnectionRejection) => void = () => undefined): void {
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

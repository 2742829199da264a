import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import Fastify from "fastify";
import { capConnectionsPerIp, httpTimeouts } from "./index.ts";

/** Opens a raw connection and reports whether the server closed it before answering anything. */
function connect(port: number): Promise<{ socket: net.Socket; closed: Promise<boolean> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      const closed = new Promise<boolean>((done) => {
        socket.once("close", () => done(true));
        setTimeout(() => done(false), 300).unref();
      });
      resolve({ socket, closed });
    });
    socket.once("error", reject);
  });
}

test("one address may hold at most maxPerIp connections; extra ones are closed at once, and a freed place is reusable", async (t) => {
  const rejected: string[] = [];
  const app = Fastify();
  app.get("/health", async () => ({ ok: true }));
  capConnectionsPerIp(app.server, 2, (reason) => rejected.push(reason));
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as net.AddressInfo).port;

  const first = await connect(port);
  const second = await connect(port);
  const third = await connect(port);
  assert.equal(await third.closed, true, "the third connection is closed by the server");
  assert.deepEqual(rejected, ["connections_per_ip"]);
  assert.equal(await second.closed, false, "the first two stay open");

  first.socket.destroy();
  // Wait until the server has seen the close (under load it can take more than a tick).
  const openNow = () => new Promise<number>((resolve, reject) => app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  while ((await openNow()) > 1) await new Promise((resolve) => setTimeout(resolve, 10));
  const again = await connect(port);
  assert.equal(await again.closed, false, "a place freed by a closed connection can be taken again");
  for (const c of [second, again]) c.socket.destroy();
});

test("0 means no cap", async (t) => {
  const app = Fastify();
  capConnectionsPerIp(app.server, 0, () => assert.fail("nothing is refused"));
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as net.AddressInfo).port;
  const sockets = await Promise.all([1, 2, 3, 4].map(() => connect(port)));
  assert.deepEqual(await Promise.all(sockets.map((s) => s.closed)), [false, false, false, false]);
  for (const s of sockets) s.socket.destroy();
});

test("httpTimeouts: the deadline check runs at a fifth of the shorter limit (200 ms to 5 s)", () => {
  assert.deepEqual(httpTimeouts({ headersTimeoutMs: 15_000, requestTimeoutMs: 60_000 }), {
    requestTimeout: 60_000,
    http: { headersTimeout: 15_000, connectionsCheckingInterval: 3000 },
  });
  assert.equal(httpTimeouts({ headersTimeoutMs: 500, requestTimeoutMs: 400 }).http.connectionsCheckingInterval, 200);
  assert.equal(httpTimeouts({ headersTimeoutMs: 600_000, requestTimeoutMs: 600_000 }).http.connectionsCheckingInterval, 5000);
});

test("a client that does not finish its headers in time is answered 408 and disconnected", async (t) => {
  const app = Fastify({ ...httpTimeouts({ headersTimeoutMs: 300, requestTimeoutMs: 300 }) });
  app.get("/health", async () => ({ ok: true }));
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as net.AddressInfo).port;
  const socket = net.connect({ host: "127.0.0.1", port });
  socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"); // never ends its headers
  let received = "";
  socket.on("data", (chunk) => (received += chunk.toString()));
  const started = performance.now();
  await new Promise((resolve) => socket.once("close", resolve));
  assert.match(received, /^HTTP\/1\.1 408/);
  assert.ok(performance.now() - started < 3000, "closed within a few checks of the deadline");
});

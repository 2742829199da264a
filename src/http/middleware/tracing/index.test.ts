import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-node";
import { ServiceError } from "../../../errors.ts";
import { tracingConfigSchema } from "../../../tracing/config.ts";
import { startTracing, type Tracing } from "../../../tracing/setup.ts";
import { inStage } from "../../../tracing/spans.ts";
import { installErrorHandlers } from "../../errors.ts";
import { registerRequestTracing, traceAuth } from "./index.ts";

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let app: FastifyInstance;
let url: string;
/** Set while a test waits for the server to have read a request's headers (and not yet its body). */
let headersArrived: (() => void) | null = null;

before(async () => {
  tracing = await startTracing(tracingConfigSchema.parse({}), { exporter });
  app = Fastify();
  installErrorHandlers(app);
  registerRequestTracing(app);
  await traceAuth(app, async () => {
    app.addHook("onRequest", async (request) => {
      if (request.headers.authorization === "Bearer wrong") throw new ServiceError("unauthenticated", "Incorrect API key provided.", { code: "invalid_api_key" });
      // Work inside the auth hooks nests under the auth span.
      await inStage("lookup", async () => undefined);
    });
  });
  app.addHook("onRequest", async (request) => {
    if (request.headers["x-body-follows"]) headersArrived?.();
  });
  // The body is read in the socket's callbacks: the handler must still see the request's span.
  app.post("/echo/:id", async (request) => inStage("work", async () => request.body));
  app.get("/boom", async () => {
    throw new Error("kaput");
  });
  app.get("/stream", (_request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { "content-type": "text/event-stream" });
    setTimeout(() => reply.raw.end("data: [DONE]\n\n"), 20);
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
after(async () => {
  await app.close();
  await tracing.shutdown();
});

/** The spans of the first trace whose server span `pick` accepts, once that span ended (at the response's close). */
async function traceOf(pick: (server: ReadableSpan) => boolean): Promise<Map<string, ReadableSpan>> {
  for (let i = 0; i < 500; i++) {
    await tracing.flush();
    const server = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && pick(s));
    if (server) {
      const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === server.spanContext().traceId);
      return new Map(spans.map((s) => [s.name, s]));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("no such server span");
}

const route = (path: string) => (s: ReadableSpan) => s.attributes["http.route"] === path;

const parentOf = (span: ReadableSpan | undefined) => span?.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan | undefined) => span?.spanContext().spanId;

test("a request: server span under the client's traceparent; auth and handler work nest under it, across body parsing", async () => {
  const traceId = "0af7651916cd43dd8448eb211c80319c";
  const parent = "b7ad6b7169203331";
  const response = await fetch(`${url}/echo/42?secret=never-traced`, {
    method: "POST",
    headers: { "content-type": "application/json", traceparent: `00-${traceId}-${parent}-01`, "user-agent": "tests/1.0" },
    body: JSON.stringify({ hello: "world" }),
  });
  assert.equal(response.status, 200);
  const spans = await traceOf(route("/echo/:id"));
  const server = spans.get("POST /echo/:id");
  assert.ok(server, [...spans.keys()].join(", "));
  assert.equal(server.spanContext().traceId, traceId);
  assert.equal(parentOf(server), parent);
  assert.deepEqual(
    { ...server.attributes },
    {
      "http.request.method": "POST",
      "url.path": "/echo/42",
      "url.scheme": "http",
      "http.route": "/echo/:id",
      "user_agent.original": "tests/1.0",
      "http.response.status_code": 200,
    },
  );
  assert.equal(parentOf(spans.get("sputnik.auth")), idOf(server));
  assert.equal(parentOf(spans.get("lookup")), idOf(spans.get("sputnik.auth")));
  assert.equal(parentOf(spans.get("work")), idOf(server), "the handler runs in the request's context");
  assert.equal(spans.get("sputnik.auth")!.attributes["sputnik.actor.kind"], "anonymous");
});

test("a body that arrives after the headers (read in later socket callbacks): the handler still runs in the request's context", async () => {
  const body = JSON.stringify({ late: true });
  const arrived = new Promise<void>((resolve) => (headersArrived = resolve));
  const request = http.request(`${url}/echo/late`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "x-body-follows": "1" },
  });
  const response = once(request, "response");
  request.flushHeaders();
  await arrived;
  request.end(body);
  const [res] = (await response) as [http.IncomingMessage];
  res.resume();
  assert.equal(res.statusCode, 200);
  const spans = await traceOf((s) => s.attributes["url.path"] === "/echo/late");
  assert.equal(parentOf(spans.get("work")), idOf(spans.get("POST /echo/:id")));
});

test("an auth refusal is the auth span's error; a 4xx leaves the server span unset, a 5xx marks it", async () => {
  assert.equal((await fetch(`${url}/echo/1`, { method: "POST", headers: { authorization: "Bearer wrong" } })).status, 401);
  const refused = await traceOf((s) => s.attributes["http.response.status_code"] === 401);
  const auth = refused.get("sputnik.auth")!;
  assert.deepEqual([auth.status.code, auth.attributes["error.type"], auth.events[0]?.name], [2, "invalid_api_key", "exception"]);
  assert.equal(refused.get("POST /echo/:id")!.status.code, 0);
  assert.equal(refused.get("work"), undefined, "the handler never ran");

  assert.equal((await fetch(`${url}/boom`)).status, 500);
  const boom = (await traceOf(route("/boom"))).get("GET /boom")!;
  assert.deepEqual([boom.status.code, boom.attributes["error.type"], boom.events[0]?.name], [2, "Error", "exception"]);
});

test("a hijacked event stream ends its span when the response closes", async () => {
  const response = await fetch(`${url}/stream`);
  assert.match(await response.text(), /\[DONE\]/);
  const server = (await traceOf(route("/stream"))).get("GET /stream")!;
  assert.equal(server.attributes["http.response.status_code"], 200);
  assert.ok(server.duration[0] > 0 || server.duration[1] >= 15_000_000, "it lasted as long as the stream");
});

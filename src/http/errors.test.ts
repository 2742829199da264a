import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify, { type FastifyBaseLogger } from "fastify";
import pino from "pino";
import { z } from "zod";
import { EngineError } from "../engines/types.ts";
import { ServiceError, type ErrorKind } from "../errors.ts";
import { ApiError, frameworkErrors, installErrorHandlers, STATUS_OF_KIND, toApiError } from "./errors.ts";

test("one table maps every ServiceError kind to its HTTP status and OpenAI error type", () => {
  const expected: Record<ErrorKind, [number, string]> = {
    invalid_request: [400, "invalid_request_error"],
    unauthenticated: [401, "authentication_error"],
    insufficient_balance: [402, "insufficient_balance"],
    forbidden: [403, "permission_error"],
    not_found: [404, "not_found_error"],
    timeout: [408, "invalid_request_error"],
    conflict: [409, "invalid_request_error"],
    too_large: [413, "invalid_request_error"],
    unsupported_media_type: [415, "invalid_request_error"],
    unprocessable: [422, "invalid_request_error"],
    rate_limited: [429, "rate_limit_error"],
    internal: [500, "server_error"],
    upstream: [502, "server_error"],
    unavailable: [503, "service_unavailable"],
  };
  assert.deepEqual(Object.keys(STATUS_OF_KIND).sort(), Object.keys(expected).sort());
  for (const [kind, [status, type]] of Object.entries(expected)) {
    const rendered = toApiError(new ServiceError(kind as ErrorKind, "m", { code: "c" }));
    assert.deepEqual([rendered.status, rendered.type], [status, type], kind);
  }
});

test("a ServiceError keeps its message, code and param; retryAfterS becomes Retry-After and meta becomes headers", () => {
  const refused = toApiError(
    new ServiceError("rate_limited", "Slow down.", { code: "rate_limit_requests", param: null, retryAfterS: 30, meta: { "x-ratelimit-remaining": "0" } }),
  );
  assert.deepEqual([refused.status, refused.message, refused.code, refused.param], [429, "Slow down.", "rate_limit_requests", null]);
  assert.deepEqual(refused.headers, { "x-ratelimit-remaining": "0", "retry-after": "30" });
  // Whole seconds, at least one: what a Retry-After header can honestly promise.
  assert.equal(toApiError(new ServiceError("unavailable", "busy", { retryAfterS: 0.2 })).headers["retry-after"], "1");
  assert.equal(toApiError(new ServiceError("unavailable", "busy", { retryAfterS: 4.1 })).headers["retry-after"], "5");
  assert.deepEqual(toApiError(new ServiceError("not_found", "Nope", { code: "model_not_found", param: "model" })).headers, {});
  const bad = toApiError(new ServiceError("invalid_request", "Message 2 is too long", { code: "message_too_long", param: "messages[2].content" }));
  assert.deepEqual([bad.status, bad.param], [400, "messages[2].content"]);
});

test("zod errors are 400s naming the offending field", () => {
  const schema = z.object({ messages: z.array(z.object({ content: z.string() })) });
  const result = schema.safeParse({ messages: [{ content: "ok" }, { content: 7 }] });
  assert.equal(result.success, false);
  const rendered = toApiError(result.error);
  assert.deepEqual([rendered.status, rendered.code, rendered.param], [400, "invalid_parameter", "messages[1].content"]);
  assert.match(rendered.message, /^Invalid value for 'messages\[1\]\.content'/);
});

test("engine errors and ApiErrors pass through as they are", () => {
  const engine = toApiError(new EngineError("The model 'x' does not exist", 404, "model_not_found", "model"));
  assert.deepEqual([engine.status, engine.code, engine.param, engine.message], [404, "model_not_found", "model", "The model 'x' does not exist"]);
  const api = new ApiError(409, "taken", "conflict");
  assert.equal(toApiError(api), api);
});

test("5xx answers hide what went wrong inside; the log gets the cause", async () => {
  const lines: string[] = [];
  const app = Fastify({ loggerInstance: pino({ level: "info" }, { write: (line: string) => void lines.push(line) }) as FastifyBaseLogger });
  installErrorHandlers(app);
  app.get("/boom", async () => {
    throw new Error("database password is hunter2");
  });
  app.get("/internal", async () => {
    throw new ServiceError("internal", "ledger row 42 is corrupt", { code: "ledger_corrupt" });
  });
  app.get("/busy", async () => {
    throw new ServiceError("unavailable", "The server is busy. Please retry later.", { code: "queue_full", retryAfterS: 3 });
  });
  app.get("/refused", async () => {
    throw new ServiceError("forbidden", "Not yours.", { code: "forbidden" });
  });
  await app.ready();

  const boom = await app.inject({ url: "/boom" });
  assert.equal(boom.statusCode, 500);
  assert.deepEqual(boom.json(), { error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: "internal_error" } });
  const internal = await app.inject({ url: "/internal" });
  assert.equal(internal.statusCode, 500);
  assert.doesNotMatch(internal.body, /ledger row 42/);
  assert.equal(internal.json().error.code, "ledger_corrupt");
  // An "unavailable" refusal is written for the client, and says when to come back.
  const busy = await app.inject({ url: "/busy" });
  assert.deepEqual([busy.statusCode, busy.json().error.message, busy.headers["retry-after"]], [503, "The server is busy. Please retry later.", "3"]);

  const logged = lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string; stack?: string } });
  const failures = logged.filter((l) => l.msg === "request failed");
  assert.deepEqual(
    failures.map((l) => l.err?.message),
    ["database password is hunter2", "ledger row 42 is corrupt", "The server is busy. Please retry later."],
    "every 5xx logs its original error, with its stack",
  );
  assert.ok(failures.every((l) => l.level >= 50 && typeof l.err?.stack === "string"));
  assert.equal((await app.inject({ url: "/refused" })).statusCode, 403);
  assert.equal(lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request failed").length, 3, "4xx answers are not logged as failures");
  await app.close();
});

test("router errors (a malformed %-escape) and unknown routes answer in the API's error shape", async () => {
  const app = Fastify({ frameworkErrors, routerOptions: { caseSensitive: true } });
  installErrorHandlers(app);
  app.get("/v1/models/:id", async () => ({ ok: true }));
  await app.ready();
  const bad = await app.inject({ url: "/v1/models/%c0" });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(bad.json(), {
    error: { message: "The request path is not valid: it contains a malformed percent-encoding.", type: "invalid_request_error", param: null, code: "invalid_url" },
  });
  const unknown = await app.inject({ url: "/V1/models/x" });
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().error.code, "route_not_found");
  await app.close();
});

/**
 * The upstream embeddings client against an HTTP server answering as an OpenAI-compatible one
 * would, and as a broken one might: what is POSTed, the vectors put back in input order, usage
 * missing, and answers that do not fit the request. The round trip with a real Sputnik upstream
 * is in test/embeddings-api.test.ts.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { embeddingTokenBound, upstreamEmbeddings } from "./embeddings.ts";
import { UpstreamError } from "./upstream.ts";

let server: Server;
let baseUrl: string;
/** The next answer: status and JSON body. */
let answer: { status: number; body: unknown } = { status: 200, body: {} };
let received: { url: string | undefined; auth: string | undefined; body: any } | null = null;

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received = { url: req.url, auth: req.headers.authorization, body: JSON.parse(body) };
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const target = () => ({ model: "m", baseUrl, apiKey: "k", upstreamModel: "up", timeoutMs: 10_000 });

test("posts floats asked for, the upstream model, dimensions and user; puts vectors back in input order", async () => {
  answer = {
    status: 200,
    body: { object: "list", data: [{ object: "embedding", index: 1, embedding: [0, 1] }, { object: "embedding", index: 0, embedding: [1, 0] }], usage: { prompt_tokens: 7, total_tokens: 7 } },
  };
  const result = await upstreamEmbeddings(target(), { model: "m", input: ["a", "b"], dimensions: 2, user: "u1" });
  assert.deepEqual(received, { url: "/v1/embeddings", auth: "Bearer k", body: { model: "up", input: ["a", "b"], encoding_format: "float", dimensions: 2, user: "u1" } });
  assert.deepEqual(result, { data: [[1, 0], [0, 1]], promptTokens: 7 });
});

test("an upstream that reports no usage is billed the inputs' byte bound", async () => {
  answer = { status: 200, body: { data: [{ index: 0, embedding: [1] }] } };
  const result = await upstreamEmbeddings(target(), { model: "m", input: ["héllo"] });
  assert.equal(result.promptTokens, embeddingTokenBound(["héllo"]));
  assert.equal(result.promptTokens, 6 + 2);
});

test("answers that do not fit the request are upstream errors (502), refusals keep their status", async () => {
  for (const body of [{ data: [{ index: 0, embedding: [1] }] }, { data: [{ index: 0, embedding: [1] }, { index: 0, embedding: [2] }] }, { data: "nope" }, [1, 2]]) {
    answer = { status: 200, body };
    await assert.rejects(upstreamEmbeddings(target(), { model: "m", input: ["a", "b"] }), (error: unknown) => error instanceof UpstreamError && error.status === 502, JSON.stringify(body));
  }
  answer = { status: 400, body: { error: { message: "input too long" } } };
  await assert.rejects(upstreamEmbeddings(target(), { model: "m", input: ["a"] }), (error: unknown) => error instanceof UpstreamError && error.status === 400 && /input too long/.test(error.message));
});

test("an unreachable upstream is a 502 naming the model", async () => {
  await assert.rejects(
    upstreamEmbeddings({ ...target(), baseUrl: "http://127.0.0.1:1/v1" }, { model: "m", input: ["a"] }),
    (error: unknown) => error instanceof UpstreamError && error.status === 502 && error.failure === "connect" && /'m' is unreachable/.test(error.message),
  );
});

/**
 * Rate limits, caps and request hygiene on two real Sputnik services that share one Redis, as two
 * replicas behind a load balancer would. Each test speaks from its own loopback address (127.0.0.x),
 * which the services see as its own client IP, so tests never share a bucket.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { forgetSignupSettings, saveAttackMode } from "../src/auth/signupMode.ts";
import { openCompletion } from "./support/loopbackClient.ts";
import { redisReachable, servicesRequired, testRedisUrl } from "./support/services.ts";
import { startTestService, type TestService } from "./support/service.ts";

/** The long scripted model; cut short (a few tokens) unless `full`. */
const ask = (extra: Record<string, unknown> = {}, full = false) => ({
  model: "scripted-long",
  messages: [{ role: "user", content: "Hello?" }],
  ...(full ? {} : { max_tokens: 8 }),
  ...extra,
});


async function getFrom(service: TestService, path: string, from: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const call = await openCompletion(service.url, null, { from, path, method: "GET" });
  await call.finished;
  return { status: call.status, headers: call.headers as Record<string, string>, body: call.text };
}

describe("rate limits and request hygiene, two services sharing Redis", () => {
  let one: TestService;
  let two: TestService;
  let redisUrl: string | undefined;
  before(async () => {
    const url = testRedisUrl();
    if (await redisReachable(url)) redisUrl = url;
    else if (servicesRequired()) throw new Error(`Redis not reachable at ${url} and SPUTNIK_REQUIRE_SERVICES=1`);
    else process.stderr.write(`!!! Redis not reachable at ${url}: the services limit in memory and the shared-limit test is skipped\n`);
    const config = {
      parallel: 1,
      ...(redisUrl ? { redisUrl } : {}),
      limits: {
        perIp: { requestsPerMinute: 3, tokensPerMinute: 400 },
        httpPerIpPerMinute: 20,
        maxConcurrentPerIp: 1,
        maxConnectionsPerIp: 5,
        maxMessages: 3,
        maxMessageChars: 1000,
        headersTimeoutMs: 1000,
        // Fresh keys: nothing left from an earlier run or another test file counts.
        redisKeyPrefix: `sputnik-test:${randomBytes(6).toString("hex")}:`,
      },
    };
    // One after the other: both at once would double the load of a start on a small machine.
    one = await startTestService({ models: ["scripted-long"], config });
    two = await startTestService({ models: ["scripted-long"], config });
  });
  after(async () => {
    await one?.stop();
    await two?.stop();
  });

  test("requests per minute per client IP: x-ratelimit headers, then 429 with Retry-After", async () => {
    const from = "127.0.0.10";
    const first = await openCompletion(one.url, ask(), { from });
    await first.finished;
    assert.equal(first.status, 200);
    assert.equal(first.headers["x-ratelimit-limit"], "3");
    assert.equal(first.headers["x-ratelimit-remaining"], "2");
    assert.equal(first.headers["x-ratelimit-limit-tokens"], "400");
    const streamed = await openCompletion(one.url, ask({ stream: true }), { from });
    assert.equal(streamed.headers["x-ratelimit-remaining"], "1", "streams carry the headers too");
    await streamed.finished;
    await (await openCompletion(one.url, ask(), { from })).finished;
    const refused = await openCompletion(one.url, ask({ stream: true }), { from });
    await refused.finished;
    assert.equal(refused.status, 429);
    assert.match(String(refused.headers["content-type"]), /^application\/json/, "refused before the stream opened");
    assert.equal(refused.headers["retry-after"], "20");
    assert.equal(refused.headers["x-ratelimit-remaining"], "0");
    const error = (JSON.parse(refused.text) as { error: { type: string; code: string } }).error;
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_requests");
  });

  test("tokens per minute: a finished completion's tokens are charged, and the bucket in debt refuses", async () => {
    const from = "127.0.0.11";
    const long = await openCompletion(one.url, ask({}, true), { from });
    await long.finished;
    const used = (JSON.parse(long.text) as { usage: { total_tokens: number } }).usage.total_tokens;
    assert.ok(used > 300, `a long completion (${used} tokens)`);
    const second = await openCompletion(one.url, ask({}, true), { from });
    await second.finished;
    assert.equal(second.status, 200, "the bucket was not yet in debt");
    const refused = await openCompletion(one.url, ask(), { from });
    await refused.finished;
    assert.equal(refused.status, 429);
    assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, "rate_limit_tokens");
    assert.ok(Number(refused.headers["retry-after"]) > 20);
  });

  test("several processes enforce one limit through Redis", async (t) => {
    if (!redisUrl) return t.skip("Redis not reachable");
    const from = "127.0.0.12";
    for (const service of [one, one, two]) {
      const call = await openCompletion(service.url, ask(), { from });
      await call.finished;
      assert.equal(call.status, 200);
    }
    const refused = await openCompletion(two.url, ask(), { from });
    await refused.finished;
    assert.equal(refused.status, 429, "the second service counted the first one's requests");
    assert.equal(refused.headers["x-ratelimit-remaining"], "0");
  });

  test("one client IP may have one completion open at once (maxConcurrentPerIp: 1)", async () => {
    const from = "127.0.0.13";
    const open = await openCompletion(one.url, ask({ stream: true }, true), { from });
    await open.until(() => open.data.length > 0);
    const refused = await openCompletion(one.url, ask(), { from });
    await refused.finished;
    assert.equal(refused.status, 429);
    assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, "concurrency_ip");
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
    open.abort();
  });

  test("too many or too long messages get 400 naming the limit and the message", async () => {
    const from = "127.0.0.14";
    const messages = (n: number, text = "hi") => Array.from({ length: n }, () => ({ role: "user", content: text }));
    const many = await openCompletion(one.url, { model: "scripted-long", messages: messages(4) }, { from });
    await many.finished;
    assert.equal(many.status, 400);
    const manyError = (JSON.parse(many.text) as { error: { code: string; param: string; message: string } }).error;
    assert.deepEqual([manyError.code, manyError.param], ["too_many_messages", "messages"]);
    assert.match(manyError.message, /the limit is 3/);
    const long = await openCompletion(one.url, { model: "scripted-long", messages: [...messages(1), { role: "user", content: "x".repeat(1001) }] }, { from });
    await long.finished;
    assert.equal(long.status, 400);
    const longError = (JSON.parse(long.text) as { error: { code: string; param: string } }).error;
    assert.deepEqual([longError.code, longError.param], ["message_too_long", "messages[1].content"]);
  });

  test("the per-IP flood guard covers every route", async () => {
    const from = "127.0.0.15";
    for (let i = 0; i < 20; i++) assert.equal((await getFrom(one, "/v1/models", from)).status, 200);
    const refused = await getFrom(one, "/v1/models", from);
    assert.equal(refused.status, 429);
    assert.equal(JSON.parse(refused.body).error.code, "rate_limit_ip");
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
  });

  test("slowloris: a client that does not finish its headers in time is answered 408 and disconnected", async () => {
    const socket = net.connect({ host: "127.0.0.1", port: Number(new URL(one.url).port), localAddress: "127.0.0.16" });
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    socket.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
    await closed;
    assert.match(received, /^HTTP\/1\.1 408/);
  });

  test("one IP may hold at most maxConnectionsPerIp connections; more are closed at once", async () => {
    const port = Number(new URL(one.url).port);
    const connect = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.17" }, () => resolve(socket));
        socket.once("error", reject);
      });
    const held: net.Socket[] = [];
    for (let i = 0; i < 5; i++) held.push(await connect());
    const extra = await connect();
    const outcome = await new Promise<string>((resolve) => {
      extra.once("close", () => resolve("closed by the server"));
      extra.once("data", () => resolve("served"));
      extra.on("error", () => undefined);
      extra.write("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
    });
    assert.equal(outcome, "closed by the server");
    for (const socket of held) socket.destroy();
    const metrics = await getFrom(one, "/metrics", "127.0.0.1");
    assert.match(metrics.body, /sputnik_rejected_requests_total\{reason="connections_per_ip"\} [1-9]/);
  });

  test("attack mode: the API serves signed-in users only, and every limit tightens", async () => {
    const from = "127.0.0.18";
    await saveAttackMode(two.store.db, { enabled: true, signupMode: "code" }, null);
    forgetSignupSettings(two.store.db);
    try {
      // The switch is read at most once a second per process.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const refused = await openCompletion(two.url, ask(), { from });
      await refused.finished;
      assert.equal(refused.status, 401);
      assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, "attack_mode_auth_required");
      // Monitoring stays reachable, under the flood guard tightened to a quarter (20 → 5 a minute).
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await getFrom(two, "/health", from)).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429], "one request of the 5 went to the completion");
    } finally {
      await saveAttackMode(two.store.db, { enabled: false, signupMode: "code" }, null);
      forgetSignupSettings(two.store.db);
    }
  });
});

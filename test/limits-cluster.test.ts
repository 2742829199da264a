/**
 * Cluster-wide admission on two real Sputnik services sharing one Redis, as two gateways behind a
 * load balancer: each serves the long scripted model with 2 sequences, so the model's capacity is
 * 2 — for both together. What runs is counted where the engine is called (each service's router),
 * not from the limits' own figures.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { EngineEvent, GenerationRequest, PreparedRequest } from "../src/engines/types.ts";
import { openCompletion, type OpenCall } from "./support/loopbackClient.ts";
import { deleteRedisKeys, redisReachable, servicesRequired, testRedisUrl } from "./support/services.ts";
import { startTestService, type TestService } from "./support/service.ts";

const ask = (maxTokens: number) => ({
  model: "scripted-long",
  messages: [{ role: "user", content: "Think it through." }],
  stream: true,
  max_tokens: maxTokens,
});

/** Generations open at the engines of both services together. */
const engines = { now: 0, most: 0 };

function countGenerations(service: TestService): void {
  const router = service.router;
  const generate = router.generate.bind(router);
  router.generate = (request: GenerationRequest, prepared?: PreparedRequest): AsyncIterable<EngineEvent> => {
    const inner = generate(request, prepared);
    return (async function* () {
      engines.now++;
      engines.most = Math.max(engines.most, engines.now);
      try {
        yield* inner;
      } finally {
        engines.now--;
      }
    })();
  };
}



describe("cluster-wide admission: two services, one Redis, one capacity", () => {
  let one: TestService;
  let two: TestService;
  let skip: string | null = null;
  let prefix = "";
  before(async () => {
    const url = testRedisUrl();
    if (!(await redisReachable(url))) {
      if (servicesRequired()) throw new Error(`Redis not reachable at ${url} and SPUTNIK_REQUIRE_SERVICES=1`);
      skip = `Redis not reachable at ${url}`;
      process.stderr.write(`!!! SKIPPED: ${skip} — the cluster admission tests did not run\n`);
      return;
    }
    const config = {
      parallel: 2,
      redisUrl: url,
      limits: {
        perIp: { requestsPerMinute: 0, tokensPerMinute: 0 },
        httpPerIpPerMinute: 0,
        maxConcurrentPerIp: 0,
        queue: { maxLength: 100, maxPerUser: 100, maxWaitMs: 120_000, assumedServiceMs: 500, keepAliveMs: 200 },
        cluster: { leaseMs: 5000, pollMs: 250 },
        // Fresh keys: nothing left from an earlier run or another test file counts.
        redisKeyPrefix: (prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`),
      },
    };
    // One after the other: both at once would double the load of a start on a small machine.
    one = await startTestService({ models: ["scripted-long"], config });
    two = await startTestService({ models: ["scripted-long"], config });
    countGenerations(one);
    countGenerations(two);
  });
  after(async () => {
    await one?.stop();
    await two?.stop();
    if (prefix) await deleteRedisKeys(testRedisUrl(), prefix);
  });

  test("with both places taken through one service, a request to the other (idle) service waits in the shared line", async (t) => {
    if (skip) return t.skip(skip);
    const running = [await openCompletion(one.url, ask(400), { from: "127.0.0.2" }), await openCompletion(one.url, ask(400), { from: "127.0.0.3" })];
    for (const call of running) await call.until(() => call.data.length > 0);
    const waiting = await openCompletion(two.url, ask(20), { from: "127.0.0.4" });
    await waiting.until(() => waiting.comments.length >= 2);
    assert.equal(waiting.data.length, 0, "no data while the other service holds the capacity");
    assert.match(waiting.comments[0]!, /^keep-alive queue_position=1 estimated_wait_s=\d+$/);
    assert.equal(running.filter((c) => c.ended).length, 0, "both running requests still run: it really waits for them");
    running[0]!.abort();
    await waiting.finished;
    assert.equal(waiting.status, 200);
    assert.equal(waiting.data.at(-1), "[DONE]");
    running[1]!.abort();
    await Promise.all(running.map((c) => c.finished));
  });

  test("under a burst through both services, the engines together never run more than the capacity", async (t) => {
    if (skip) return t.skip(skip);
    await waitFor(() => engines.now === 0);
    engines.most = 0;
    const calls: OpenCall[] = [];
    for (let i = 0; i < 12; i++) {
      const service = i % 2 === 0 ? one : two;
      calls.push(await openCompletion(service.url, ask(30), { from: `127.0.1.${i + 1}` }));
    }
    await Promise.all(calls.map((c) => c.finished));
    for (const call of calls) {
      assert.equal(call.status, 200);
      assert.equal(call.data.at(-1), "[DONE]");
    }
    assert.ok(engines.most <= 2, `at most 2 generations at once across both services (${engines.most})`);
    assert.equal(engines.most, 2, "and the capacity was used");
    assert.ok(calls.some((c) => c.comments.some((line) => /queue_position=([2-9]|\d\d)/.test(line))), "requests queued behind others from both services");
  });

  test("fairness across services: a heavy user's 30 requests on one do not hold back a light user's request on the other", async (t) => {
    if (skip) return t.skip(skip);
    await waitFor(() => engines.now === 0);
    const heavy: OpenCall[] = [];
    for (let i = 0; i < 30; i++) heavy.push(await openCompletion(one.url, ask(40), { from: "127.0.0.20" }));
    const lightArrived = performance.now();
    const light = await openCompletion(two.url, ask(40), { from: "127.0.0.21" });
    await light.finished;
    assert.equal(light.status, 200);
    assert.equal(light.data.at(-1), "[DONE]");
    const lightStarted = light.firstDataAt!;
    // Heavy requests that started after the light one arrived and before it started: with two
    // places, at most the ones already handed a place as it arrived.
    const overtaking = heavy.filter((h) => h.firstDataAt !== null && h.firstDataAt > lightArrived && h.firstDataAt < lightStarted);
    t.diagnostic(`light waited ${Math.round(lightStarted - lightArrived)} ms; ${overtaking.length} heavy requests went first`);
    assert.ok(overtaking.length <= 2, `${overtaking.length} heavy requests went first`);
    const waitingWhenLightCame = heavy.filter((h) => h.firstDataAt === null || h.firstDataAt > lightArrived).length;
    assert.ok(waitingWhenLightCame >= 20, `the heavy backlog was there when the light request came (${waitingWhenLightCame} waiting)`);
    for (const call of heavy) call.abort();
    await Promise.all(heavy.map((c) => c.finished));
    await waitFor(() => engines.now === 0);
  });
});

async function waitFor(check: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!check()) {
    if (performance.now() > deadline) assert.fail(`not within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

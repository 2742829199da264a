/**
 * The admission queue in front of the real engine: the scripted models through llama.cpp with one
 * sequence (parallel: 1), so a second request always waits. Distinct loopback source addresses
 * (127.0.0.2, 127.0.0.3) are distinct clients without accounts, i.e. distinct users to the queue.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { listRequests } from "../src/store/requestLog.ts";
import { openCompletion, sendCompletion, type OpenCall } from "./support/loopbackClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

const ask = (model: string, stream = true, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: "user", content: "Think it through." }],
  stream,
  ...extra,
});
/** A shorter request: a tenth of the long script or so. */
const short = (stream = true) => ask("scripted-long", stream, { max_tokens: 40 });

/** Limits that stay out of the way, so each test sees only the queue. */
const noRateLimits = {
  perIp: { requestsPerMinute: 0, tokensPerMinute: 0 },
  httpPerIpPerMinute: 0,
  maxConcurrentPerIp: 0,
};

const metricsToken = "metrics-token-0123456789";

async function metricsText(service: TestService): Promise<string> {
  const response = await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
  assert.equal(response.status, 200);
  return response.text();
}

function metricValue(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function eventually(what: string, check: () => Promise<boolean>, limitMs = 5000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`${what}: not within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until `call` has started generating (its first data event arrived). */
const running = (call: OpenCall) => call.until(() => call.data.length > 0);

describe("admission queue, one sequence", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      models: ["scripted-long"],
      config: {
        parallel: 1,
        metricsToken,
        limits: { ...noRateLimits, queue: { maxLength: 1, maxWaitMs: 60_000, assumedServiceMs: 500, keepAliveMs: 200 } },
      },
    });
  });
  after(() => service.stop());

  test("a streamed request that waits hears its place in line as SSE comments, then streams normally", async () => {
    const first = await openCompletion(service.url, ask("scripted-long"));
    await running(first);
    const waiting = await openCompletion(service.url, ask("scripted-long"));
    assert.equal(waiting.status, 200);
    assert.match(String(waiting.headers["content-type"]), /^text\/event-stream/);
    await waiting.until(() => waiting.comments.length >= 2);
    assert.equal(first.ended, false, "the first request still runs: the second one is really waiting");
    assert.equal(waiting.data.length, 0, "no data while waiting");
    for (const comment of waiting.comments) assert.match(comment, /^keep-alive queue_position=1 estimated_wait_s=\d+$/);
    await waiting.finished;
    const content = waiting.data
      .filter((d) => d !== "[DONE]")
      .map((d) => JSON.parse(d) as { choices: Array<{ delta: { content?: string | null } }> })
      .map((chunk) => chunk.choices[0]?.delta.content ?? "")
      .join("");
    assert.equal(content, MODEL_SCRIPTS["scripted-long"]!.answer);
    assert.equal(waiting.data.at(-1), "[DONE]");
    await first.finished;
  });

  test("a full queue answers 503 with Retry-After at once, before any byte of a stream", async () => {
    const first = await openCompletion(service.url, ask("scripted-long"));
    await running(first);
    const waiting = await openCompletion(service.url, ask("scripted-long"));
    await waiting.until(() => waiting.comments.length > 0);
    const sent = performance.now();
    const refused = await openCompletion(service.url, ask("scripted-long"));
    await refused.finished;
    const elapsedMs = performance.now() - sent;
    assert.equal(refused.status, 503);
    assert.match(String(refused.headers["content-type"]), /^application\/json/);
    assert.match(String(refused.headers["retry-after"]), /^[1-9]\d*$/);
    assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, "queue_full");
    assert.ok(elapsedMs < 1000, `refused within 1 s (took ${Math.round(elapsedMs)} ms)`);
    assert.equal(first.ended, false, "decided while the engine was still busy, not after a wait");
    waiting.abort();
    await first.finished;
  });

  test("a waiting client that leaves frees its place at once", async () => {
    const first = await openCompletion(service.url, ask("scripted-long"));
    await running(first);
    const leaving = sendCompletion(service.url, ask("scripted-long", false));
    await eventually("the request is queued", async () => metricValue(await metricsText(service), 'sputnik_queue_length{model="scripted-long"}') === 1);
    leaving.abort();
    await eventually("its place is free", async () => metricValue(await metricsText(service), 'sputnik_queue_length{model="scripted-long"}') === 0);
    assert.equal(first.ended, false, "freed while the running request still runs");
    // The place is really free: the next request is first in line, not refused as over the limit of 1.
    const next = await openCompletion(service.url, ask("scripted-long"));
    await next.until(() => next.comments.length > 0);
    assert.match(next.comments[0]!, /queue_position=1 /);
    await next.finished;
    await first.finished;
  });

  test("a running client that leaves stops its generation and the next request starts", async () => {
    const leaving = await openCompletion(service.url, ask("scripted-long"));
    await running(leaving);
    const pending = sendCompletion(service.url, ask("scripted-long", false));
    await eventually("the next request is queued", async () => metricValue(await metricsText(service), 'sputnik_queue_length{model="scripted-long"}') === 1);
    leaving.abort();
    const next = await pending.response;
    await next.finished;
    assert.equal(next.status, 200);
    const full = (JSON.parse(next.text) as { usage: { completion_tokens: number } }).usage.completion_tokens;
    const [served, stopped] = await listRequests(service.store.db, { limit: 2 });
    assert.ok(stopped && stopped.stream === 1 && stopped.status === 499, "the abandoned stream is logged as 499");
    assert.ok(stopped.completion_tokens < full, `its generation stopped early (${stopped.completion_tokens} of ${full} tokens)`);
    assert.ok(served && served.stream === 0 && served.queue_ms > 0, "the next request waited, then ran");
    assert.ok(served.queue_ms < 1000, `and waited only for the stopped one (${served.queue_ms} ms), not for a whole generation`);
  });

  test("GET /metrics reports requests, queue, waits, TTFT, speed, sequences, cache and refusals", async () => {
    const text = await metricsText(service);
    assert.ok((metricValue(text, 'sputnik_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}') ?? 0) >= 3);
    assert.ok((metricValue(text, 'sputnik_http_requests_total{route="/v1/chat/completions",method="POST",status="503"}') ?? 0) >= 1);
    assert.ok((metricValue(text, 'sputnik_rejected_requests_total{reason="queue_full"}') ?? 0) >= 1);
    assert.equal(metricValue(text, 'sputnik_queue_length{model="scripted-long"}'), 0);
    assert.equal(metricValue(text, 'sputnik_sequences{model="scripted-long"}'), 1);
    assert.ok(metricValue(text, 'sputnik_active_sequences{model="scripted-long"}') !== undefined);
    assert.ok((metricValue(text, 'sputnik_queue_wait_seconds_count{model="scripted-long"}') ?? 0) >= 4);
    assert.ok((metricValue(text, 'sputnik_queue_wait_seconds_sum{model="scripted-long"}') ?? 0) > 0, "some requests really waited");
    assert.ok((metricValue(text, 'sputnik_time_to_first_token_seconds_count{model="scripted-long"}') ?? 0) >= 3);
    assert.ok((metricValue(text, 'sputnik_generation_tokens_per_second_count{model="scripted-long"}') ?? 0) >= 3);
    const ratio = metricValue(text, 'sputnik_prompt_cache_hit_ratio{model="scripted-long"}');
    assert.ok(ratio !== undefined && ratio >= 0 && ratio <= 1);
    assert.ok((metricValue(text, "process_resident_memory_bytes") ?? 0) > 0);
    // The engine's own counters: batches and what they carried, answers re-read for the next turn.
    const batches = metricValue(text, 'sputnik_engine_batches_total{model="scripted-long"}') ?? 0;
    assert.ok(batches > 0, "llama.cpp batches are counted");
    assert.ok((metricValue(text, 'sputnik_engine_batch_tokens_total{model="scripted-long"}') ?? 0) >= batches, "each batch carried at least one token");
    assert.ok(metricValue(text, 'sputnik_engine_shared_batches_total{model="scripted-long"}') !== undefined);
    for (const outcome of ["completed", "abandoned"]) assert.ok(metricValue(text, `sputnik_engine_rereads_total{model="scripted-long",outcome="${outcome}"}`) !== undefined, outcome);
    assert.ok(metricValue(text, 'sputnik_engine_reread_tokens_total{model="scripted-long"}') !== undefined);
  });
  test("/metrics needs the bearer token when one is configured", async () => {
    const anonymous = await fetch(`${service.url}/metrics`);
    assert.equal(anonymous.status, 401);
    const wrong = await fetch(`${service.url}/metrics`, { headers: { authorization: "Bearer not-the-token-at-all" } });
    assert.equal(wrong.status, 401);
    const right = await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
    assert.equal(right.status, 200);
    assert.match(await right.text(), /sputnik_rejected_requests_total\{reason="queue_full"\} 1/);
  });
});

describe("admission queue: estimated wait, fairness between users", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({
      models: ["scripted-long"],
      config: {
        parallel: 1,
        metricsToken,
        // Until the model has served a request its service time is assumed to be 130 s: over the
        // 120 s limit for anyone who would wait behind one request. The fairness test runs after
        // that, with measured (short) service times.
        limits: { ...noRateLimits, queue: { maxLength: 100, maxPerUser: 60, maxWaitMs: 120_000, assumedServiceMs: 130_000 } },
      },
    });
  });
  after(() => service.stop());

  test("a request whose wait would exceed the limit gets 503 with Retry-After at once", async () => {
    const first = await openCompletion(service.url, ask("scripted-long"));
    await running(first);
    const refused = await openCompletion(service.url, ask("scripted-long"));
    await refused.finished;
    assert.equal(refused.status, 503);
    const error = (JSON.parse(refused.text) as { error: { code: string; type: string; message: string } }).error;
    assert.equal(error.code, "queue_wait_too_long");
    assert.equal(error.type, "service_unavailable");
    assert.match(error.message, /about 130 s, over the 120 s limit/);
    assert.equal(refused.headers["retry-after"], "10");
    assert.equal(first.ended, false);
    await first.finished;
  });

  test("one user with 50 queued requests delays another user's single request by at most one turn", async () => {
    const heavy: OpenCall[] = [];
    for (let i = 0; i < 51; i++) heavy.push(await openCompletion(service.url, short(), { from: "127.0.0.2" }));
    const lightArrived = performance.now();
    const light = await openCompletion(service.url, short(), { from: "127.0.0.3" });
    await light.finished;
    assert.equal(light.status, 200);
    assert.equal(light.data.at(-1), "[DONE]");
    const lightStarted = light.firstDataAt!;
    // Heavy requests that started running after the light one arrived and before it started.
    const overtaking = heavy.filter((h) => h.firstDataAt !== null && h.firstDataAt > lightArrived && h.firstDataAt < lightStarted);
    assert.ok(overtaking.length <= 1, `${overtaking.length} heavy requests went first`);
    const waitingWhenLightCame = heavy.filter((h) => h.firstDataAt === null || h.firstDataAt > lightArrived).length;
    assert.ok(waitingWhenLightCame >= 45, `the heavy backlog was there when the light request came (${waitingWhenLightCame} waiting)`);
    for (const call of heavy) call.abort();
    await eventually("the abandoned backlog is gone", async () => metricValue(await metricsText(service), 'sputnik_queue_length{model="scripted-long"}') === 0);
  });
});

/**
 * `npm run bench:load`: Sputnik under a flood of streaming clients, on loopback only, bounded in
 * clients and time, stopping by itself. The service runs as a child process serving the scripted
 * model through the real engine; clients spread over loopback addresses (127.0.1.x), which the
 * service sees as distinct users, so the fair queue has users to be fair between.
 *
 *   npm run bench:load -- [--clients 100] [--duration 30] [--parallel 4] [--threads 1]
 *                         [--model scripted|scripted-long] [--scenario all|sustained|overload]
 *
 * Scenarios:
 * - cancel: 20 requests waiting behind busy sequences leave at once; how soon is the queue empty?
 * - sustained: N clients, each streaming one request after another for the duration; those
 *   beyond the engine's sequences wait in the queue, hearing keep-alives. Every request should
 *   finish: no unintended 5xx, no dropped stream.
 * - overload: requests arrive at twice the measured capacity, with a short longest wait; every
 *   excess request should get 429/503 with Retry-After within 1 s, before any stream byte.
 *
 * Figures are printed, never asserted: the machine is shared and timings are noisy.
 */
import { setMaxListeners } from "node:events";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { ensureModel } from "../src/gguf/catalog.ts";
import { openDatabase } from "../src/store/database.ts";
import { percentile, streamOnce, type Outcome } from "./loadClient.ts";
import { LoadServer, metricValue } from "./loadServer.ts";

const { values: args } = parseArgs({
  options: {
    clients: { type: "string", default: "100" },
    duration: { type: "string", default: "30" },
    drain: { type: "string", default: "30" },
    parallel: { type: "string", default: "4" },
    threads: { type: "string", default: "1" },
    model: { type: "string", default: "scripted" },
    addresses: { type: "string", default: "50" },
    scenario: { type: "string", default: "all" },
    "overload-seconds": { type: "string", default: "20" },
    "overload-max-wait-ms": { type: "string", default: "3000" },
  },
});

function bounded(name: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}
const clients = bounded("clients", args.clients, 1, 1000);
const durationS = bounded("duration", args.duration, 1, 300);
const drainS = bounded("drain", args.drain, 1, 120);
const parallel = bounded("parallel", args.parallel, 1, 64);
const threads = bounded("threads", args.threads, 1, 64);
const addresses = bounded("addresses", args.addresses, 1, 250);
const overloadS = bounded("overload-seconds", args["overload-seconds"], 1, 120);
const overloadMaxWaitMs = bounded("overload-max-wait-ms", args["overload-max-wait-ms"], 100, 60_000);
if (args.model !== "scripted" && args.model !== "scripted-long") throw new Error("--model must be scripted or scripted-long");
const scenario = args.scenario ?? "all";
if (!["all", "sustained", "overload"].includes(scenario)) throw new Error("--scenario must be all, sustained or overload");

const model = args.model;
const modelPaths = [await ensureModel(model), ...(model === "scripted-long" ? [] : [await ensureModel("scripted-long")])];
const body = (i: number) => ({ model, messages: [{ role: "user", content: `Client ${i} asks: what is the answer?` }] });
const log = (line: string) => console.log(line);
const s = (ms: number) => (Number.isNaN(ms) ? "-" : `${(ms / 1000).toFixed(2)} s`);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

/** A signal every open request listens to: as many listeners as requests. */
function cutSignal(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/** One keep-alive agent per source address: 127.0.1.1, 127.0.1.2, … */
const agents = Array.from({ length: addresses }, (_, i) => new http.Agent({ keepAlive: true, localAddress: `127.0.1.${i + 1}` }));
const agentFor = (i: number) => agents[i % addresses]!;

/** Limits out of the way except the queue, which is the point. */
function serverConfig(queue: Record<string, number>): Record<string, unknown> {
  return {
    models: modelPaths,
    threads,
    parallel,
    contextSize: 2048,
    pullDefaultModel: false,
    limits: {
      perIp: { requestsPerMinute: 0, tokensPerMinute: 0 },
      httpPerIpPerMinute: 0,
      maxConcurrentPerIp: 0,
      maxConnectionsPerIp: 0,
      queue,
    },
  };
}

async function withServer<T>(name: string, config: Record<string, unknown>, run: (server: LoadServer) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `sputnik-load-${name}-`));
  const server = new LoadServer(config, dataDir);
  try {
    await server.start();
    return await run(server);
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function statusCounts(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.abandoned ? "cut by the bench" : o.status === 0 ? "no response" : o.refusal ? `${o.status} ${o.refusal}` : String(o.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort().map(([k, v]) => `${k}: ${v}`).join(", ");
}

function rssLine(server: LoadServer, from: number): string {
  const samples = server.rss.slice(from);
  if (samples.length === 0) return "server RSS: no samples";
  return `server RSS: start ${mb(samples[0]!)}, max ${mb(Math.max(...samples))}, end ${mb(samples.at(-1)!)}`;
}

/** queue_ms of the requests the service logged since `sinceEpochMs` (the server's own measure). */
async function serverQueueWaits(server: LoadServer, sinceEpochMs: number): Promise<number[]> {
  const store = await openDatabase({ dataDir: server.dataDir });
  try {
    const rows = await store.db
      .selectFrom("request_log")
      .select(["queue_ms"])
      .where("created_at", ">=", sinceEpochMs)
      .where("status", "=", 200)
      .execute();
    return rows.map((r) => r.queue_ms);
  } finally {
    await store.close();
  }
}

async function cancelProbe(server: LoadServer): Promise<void> {
  const series = 'sputnik_queue_length{model="scripted-long"}';
  const cut = cutSignal();
  const long = { model: "scripted-long", messages: [{ role: "user", content: "Take your time." }] };
  const blockers = Array.from({ length: parallel }, (_, i) => streamOnce(server.url, long, agentFor(i), cut.signal, server.localKey));
  const leaving = cutSignal();
  const waiting = Array.from({ length: 20 }, (_, i) => streamOnce(server.url, long, agentFor(parallel + i), leaving.signal, server.localKey));
  const deadline = performance.now() + 30_000;
  while ((metricValue(await server.metrics(), series) ?? 0) < 20 && performance.now() < deadline) await sleep(20);
  const scrapeStarted = performance.now();
  await server.metrics();
  const scrapeMs = performance.now() - scrapeStarted;
  const left = performance.now();
  leaving.abort();
  let freedMs = Number.NaN;
  while (performance.now() - left < 5000) {
    if ((metricValue(await server.metrics(), series) ?? 1) === 0) {
      freedMs = performance.now() - left;
      break;
    }
  }
  cut.abort();
  await Promise.all([...blockers, ...waiting]);
  const freed = Number.isNaN(freedMs) ? "not within 5 s" : `after ${freedMs.toFixed(0)} ms`;
  log(`cancel: 20 waiting clients left at once; the queue was seen empty ${freed} (polling /metrics, one scrape takes ${scrapeMs.toFixed(0)} ms)`);
}

async function sustained(server: LoadServer): Promise<void> {
  const sinceEpoch = Date.now();
  const rssFrom = server.rss.length;
  const outcomes: Outcome[] = [];
  const cut = cutSignal();
  const started = performance.now();
  const stopAt = started + durationS * 1000;
  let inFlight = 0;
  let maxInFlight = 0;
  const client = async (i: number) => {
    while (performance.now() < stopAt && !cut.signal.aborted) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const outcome = await streamOnce(server.url, body(i), agentFor(i), cut.signal, server.localKey);
      outcomes.push(outcome);
      inFlight--;
      // A well-behaved client (as the OpenAI SDKs are) waits as long as Retry-After asks.
      const retryAfterS = Number(outcome.retryAfter);
      if (outcome.status !== 200 && retryAfterS > 0) await sleep(Math.min(retryAfterS * 1000, Math.max(0, stopAt - performance.now())));
    }
  };
  const all = Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  const watch = watchQueue(server, model);
  await sleep(durationS * 1000);
  const drained = await Promise.race([all.then(() => true), sleep(drainS * 1000).then(() => false)]);
  if (!drained) cut.abort();
  await all;
  const queue = watch.stop();
  const elapsedS = (performance.now() - started) / 1000;
  const ok = outcomes.filter((o) => o.status === 200 && o.done && !o.streamError);
  const unintended5xx = outcomes.filter((o) => o.status >= 500 || (o.streamError !== null && !o.abandoned)).length;
  const dropped = outcomes.filter((o) => o.dropped).length;
  const tokens = ok.reduce((sum, o) => sum + o.completionTokens, 0);
  const ttft = ok.map((o) => o.ttftMs!).filter((v) => v !== null);
  const waits = await serverQueueWaits(server, sinceEpoch);
  const waited = ok.filter((o) => o.keepAlives > 0);
  log(`sustained: ${clients} streaming clients for ${durationS} s (+ up to ${drainS} s to finish), model ${model}, ${parallel} sequences, ${threads} thread(s), ${addresses} client addresses`);
  log(`  requests: ${outcomes.length} (${statusCounts(outcomes)}); completed streams ${ok.length}; unintended 5xx ${unintended5xx}; dropped streams ${dropped}; most open at once ${maxInFlight}`);
  log(`  throughput: ${(ok.length / elapsedS).toFixed(1)} completions/s, ${(tokens / elapsedS).toFixed(0)} generated tokens/s over ${elapsedS.toFixed(1)} s`);
  log(`  TTFT (client, queue included): p50 ${s(percentile(ttft, 50))}, p99 ${s(percentile(ttft, 99))}, max ${s(Math.max(...ttft))}`);
  log(`  queue wait (server): p50 ${s(percentile(waits, 50))}, p99 ${s(percentile(waits, 99))}, max ${s(Math.max(...waits))} over ${waits.length} logged requests`);
  log(`  queue (sampled every 2 s): longest ${queue.maxLength}, most running ${queue.maxRunning}, estimated time per place in line ${queue.service}`);
  log(`  keep-alives: ${waited.length} completed streams waited and heard ${waited.reduce((n, o) => n + o.keepAlives, 0)} keep-alive comments`);
  log(`  ${rssLine(server, rssFrom)}`);
}

async function overload(server: LoadServer): Promise<void> {
  // Capacity: three clients per sequence, so a sequence never idles between one client's
  // requests; counted after a 2 s warm-up, over 8 s.
  const calibration: Outcome[] = [];
  const calibrationStarted = performance.now();
  const never = cutSignal().signal;
  await Promise.all(
    Array.from({ length: 3 * parallel }, async (_, i) => {
      while (performance.now() - calibrationStarted < 10_000) calibration.push(await streamOnce(server.url, body(i), agentFor(i), never, server.localKey));
    }),
  );
  const counted = calibration.filter((o) => o.status === 200 && o.startedAt + o.totalMs > calibrationStarted + 2000);
  const capacity = counted.length / ((performance.now() - calibrationStarted - 2000) / 1000);
  const rate = 2 * capacity;
  const rssFrom = server.rss.length;
  const outcomes: Promise<Outcome>[] = [];
  const cut = cutSignal();
  const started = performance.now();
  for (let i = 0; performance.now() - started < overloadS * 1000; i++) {
    // Open loop: arrivals on a fixed schedule, whatever happens to earlier ones.
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    outcomes.push(streamOnce(server.url, body(i), agentFor(i), cut.signal, server.localKey));
    if (outcomes.length >= 20_000) break;
  }
  const timer = setTimeout(() => cut.abort(), drainS * 1000);
  const done = await Promise.all(outcomes);
  clearTimeout(timer);
  const elapsedS = (performance.now() - started) / 1000;
  const refused = done.filter((o) => o.status === 429 || o.status === 503);
  const refusedLate = refused.filter((o) => (o.headersMs ?? Infinity) > 1000).length;
  const withoutRetryAfter = refused.filter((o) => o.retryAfter === null).length;
  const served = done.filter((o) => o.status === 200 && o.done && !o.streamError);
  const other5xx = done.filter((o) => o.status >= 500 && o.status !== 503).length;
  const streamErrors = done.filter((o) => o.status === 200 && o.streamError !== null).length;
  const refusal = refused.map((o) => o.headersMs!);
  const metrics = await server.metrics();
  const reasons = ["queue_full", "queue_wait_too_long", "queue_timeout", "queue_user_full"]
    .map((r) => `${r} ${metricValue(metrics, `sputnik_rejected_requests_total{reason="${r}"}`) ?? 0}`)
    .join(", ");
  log(`overload: capacity measured at ${capacity.toFixed(1)} completions/s; ${done.length} requests offered at ${rate.toFixed(1)}/s (2×) for ${overloadS} s, longest wait ${overloadMaxWaitMs} ms`);
  log(`  statuses: ${statusCounts(done)}; served ${(served.length / elapsedS).toFixed(1)}/s; other 5xx ${other5xx}; errors inside 200 streams ${streamErrors}`);
  log(`  refusals: ${refused.length}, all before any stream byte (JSON answers); without Retry-After ${withoutRetryAfter}; later than 1 s ${refusedLate}`);
  log(`  time to refusal: p50 ${s(percentile(refusal, 50))}, p99 ${s(percentile(refusal, 99))}, max ${s(Math.max(...refusal))}`);
  log(`  refused by reason (server): ${reasons}`);
  const timedOut = done.filter((o) => o.streamError === "queue_timeout");
  if (timedOut.length > 0) {
    const told = timedOut.map((o) => o.firstEstimateS ?? 0);
    log(`  timed out in line after 200: ${timedOut.length}; they had been told p50 ${percentile(told, 50)} s, max ${Math.max(...told)} s`);
  }
  log(`  ${rssLine(server, rssFrom)}`);
}

/** Samples the model's queue figures from /metrics while a scenario runs. */
function watchQueue(server: LoadServer, id: string): { stop(): { maxLength: number; maxRunning: number; service: string } } {
  let maxLength = 0;
  let maxRunning = 0;
  const service: number[] = [];
  const timer = setInterval(() => {
    server.metrics().then((text) => {
      maxLength = Math.max(maxLength, metricValue(text, `sputnik_queue_length{model="${id}"}`) ?? 0);
      maxRunning = Math.max(maxRunning, metricValue(text, `sputnik_active_sequences{model="${id}"}`) ?? 0);
      const estimate = metricValue(text, `sputnik_queue_turn_seconds{model="${id}"}`);
      if (estimate !== undefined) service.push(estimate * 1000);
    }, () => undefined);
  }, 2000);
  return {
    stop: () => {
      clearInterval(timer);
      const range = service.length ? `${Math.min(...service).toFixed(0)}–${Math.max(...service).toFixed(0)} ms` : "-";
      return { maxLength, maxRunning, service: range };
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

log(`# Sputnik load bench: ${os.cpus().length} CPUs, node ${process.version}`);
// Stops by itself even if something hangs: the whole bench has a hard time limit.
const hardLimitMs = (durationS + drainS + overloadS + drainS + 300) * 1000;
const hardStop = setTimeout(() => {
  console.error(`load bench: over its ${hardLimitMs / 1000} s limit, stopping`);
  process.exit(2);
}, hardLimitMs);
hardStop.unref();
try {
  if (scenario === "all" || scenario === "sustained") {
    await withServer(
      "sustained",
      serverConfig({ maxLength: clients + 100, maxPerUser: clients, maxWaitMs: 600_000, assumedServiceMs: 1000, keepAliveMs: 2000 }),
      async (server) => {
        await cancelProbe(server);
        await sustained(server);
      },
    );
  }
  if (scenario === "all" || scenario === "overload") {
    await withServer(
      "overload",
      serverConfig({ maxLength: 10_000, maxPerUser: 10_000, maxWaitMs: overloadMaxWaitMs, assumedServiceMs: 1000, keepAliveMs: 2000 }),
      overload,
    );
  }
} finally {
  for (const agent of agents) agent.destroy();
}

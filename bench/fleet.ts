/**
 * `npm run bench:fleet`: a multi-turn chat workload through a Sputnik gateway in front of three
 * Sputnik engine nodes (`sputnik serve` processes on loopback), once per routing policy in the same
 * run, plus the same workload against one node alone as the reference.
 *
 *   npm run bench:fleet -- [--users 12] [--turns 5] [--clients 6] [--model scripted]
 *
 * Workload: `users` conversations of `turns` turns sharing one long system prompt, driven by
 * `clients` concurrent clients that always send the turn of the user who waited longest (so
 * conversations interleave, as many users at once do). Per policy it prints the prompt-cache hit
 * ratio (cached prompt tokens / prompt tokens, as the nodes report them through the gateway), TTFT
 * p50/p99 at the client, output tokens/s, and the gateway's routing overhead per request: the time
 * from the fleet engine starting a request to the upstream request leaving (routing-state read,
 * replica choice, lease claim), measured inside the gateway (in this process). With Redis reachable
 * (SPUTNIK_TEST_REDIS_URL or 127.0.0.1:6379) the routing state is in Redis, as in production, and an
 * extra run sends each turn through the other of two gateways sharing it.
 *
 * Every policy runs on its own copy of the model on each node (a symlink under another name), so
 * one policy's conversations never sit in the KV cache another policy reads. Nothing is asserted:
 * the load average and the known confounders are printed with the figures.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { readLocalKey } from "../src/auth/localMode.ts";
import { loadConfig } from "../src/config/load.ts";
import { FleetEngine } from "../src/engines/fleet/fleetEngine.ts";
import { UpstreamClient } from "../src/engines/remote/upstream.ts";
import type { GenerationRequest } from "../src/engines/types.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { startService, type RunningService } from "../src/runtime/startService.ts";
import { percentile } from "./loadClient.ts";
import { SputnikProcess } from "./sputnikProcess.ts";
import { deleteRedisKeys } from "../test/support/services.ts";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "12" },
    turns: { type: "string", default: "5" },
    clients: { type: "string", default: "6" },
    model: { type: "string", default: "scripted" },
  },
});
const users = Number(args.users);
const turns = Number(args.turns);
const clients = Number(args.clients);
for (const [name, v] of [["users", users], ["turns", turns], ["clients", clients]] as const) {
  if (!Number.isInteger(v) || v < 1 || v > 200) throw new Error(`--${name} must be a whole number from 1 to 200`);
}
// Generated models are tiny: GPU detection would cost each node seconds and change nothing.
process.env.SPUTNIK_GPU ??= "off";

const loadAverage = () => os.loadavg().map((v) => v.toFixed(2)).join(" ");
const log = (line: string) => console.log(line);
log(`# fleet bench: ${users} users × ${turns} turns, ${clients} clients, model ${args.model}, ${os.cpus().length} CPUs, load average ${loadAverage()}`);

const SYSTEM = [
  "You are a helpful assistant for a large online shop.",
  "Answer politely, briefly and clearly, and never invent order numbers, prices or delivery dates.",
  "If a question is about an order, ask for the order number first; if it is about returns, explain the 30-day return policy;",
  "if it is about payments, say which payment methods the shop accepts: cards, bank transfer and invoices for business customers.",
  "Keep every answer under one hundred words, use the customer's language, and end with a short question that moves the conversation on.",
].join(" ");

// ---- the nodes: three for the fleet, one alone; each policy its own model copy ----
const POLICIES = ["affinity", "least_loaded", "round_robin"] as const;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-fleet-bench-"));
const source = await ensureModel(args.model!);
const modelsDir = path.join(work, "models");
fs.mkdirSync(modelsDir);
const copies = ["affinity", "least_loaded", "round_robin", "affinity_2gw", "alone"];
for (const name of copies) fs.symlinkSync(source, path.join(modelsDir, `${name}.gguf`));
const nodeConfig = (models: string[]) => ({
  models: models.map((m) => path.join(modelsDir, `${m}.gguf`)),
  threads: 1,
  parallel: 2,
  contextSize: 4096,
  pullDefaultModel: false,
  // The gateway speaks as one client from one address: public per-IP limits would throttle it.
  limits: { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, httpPerIpPerMinute: 0, maxConcurrentPerIp: 0 },
});
const processes: SputnikProcess[] = [];
const gateways: RunningService[] = [];
let redisPrefix: string | null = null;
let redisUrl: string | null = null;

try {
  const started = performance.now();
  const nodeDirs = [0, 1, 2, 3].map((i) => fs.mkdirSync(path.join(work, `node${i}`), { recursive: true }) ?? path.join(work, `node${i}`));
  for (let i = 0; i < 4; i++) processes.push(new SputnikProcess(nodeConfig(i < 3 ? copies.slice(0, 4) : ["alone"]), nodeDirs[i]!));
  const urls = await Promise.all(processes.map((p) => p.start()));
  const keys = await Promise.all(nodeDirs.map(async (d) => (await readLocalKey(d))!));
  log(`# 4 nodes up in ${Math.round(performance.now() - started)} ms (3 for the fleet, 1 alone), load average ${loadAverage()}`);

  redisUrl = await reachableRedis(process.env.SPUTNIK_TEST_REDIS_URL || "redis://127.0.0.1:6379");
  redisPrefix = redisUrl ? `sputnik-bench:${process.pid}:${Date.now()}:` : null;
  const replicas = [0, 1, 2].map((i) => ({ baseUrl: `${urls[i]}/v1`, apiKey: keys[i], name: `node${i}`, maxConcurrency: 2 }));
  const remoteModels = [
    ...POLICIES.map((routing) => ({ id: routing, routing, replicas, ...(redisPrefix ? { stateKeyPrefix: `${redisPrefix}fleet:` } : {}) })),
    { id: "affinity_2gw", routing: "affinity", replicas, ...(redisPrefix ? { stateKeyPrefix: `${redisPrefix}fleet:` } : {}) },
  ];
  for (let g = 0; g < (redisUrl ? 2 : 1); g++) {
    const dataDir = fs.mkdtempSync(path.join(work, `gateway${g}-`));
    const config = loadConfig({
      env: {},
      flags: {
        host: "127.0.0.1",
        port: 0,
        dataDir,
        models: [],
        pullDefaultModel: false,
        logLevel: "silent",
        remoteModels,
        ...(redisUrl ? { redisUrl, limits: { redisKeyPrefix: `${redisPrefix}rl:`, ...gatewayLimits() } } : { limits: gatewayLimits() }),
      },
    });
    gateways.push(await startService(config));
  }
  const gatewayKeys = await Promise.all(gateways.map((g) => readLocalKey(g.config.dataDir)));
  log(`# ${gateways.length} gateway(s) in this process, routing state ${redisUrl ? `in Redis (${redisUrl})` : "in memory (no Redis reachable)"}`);

  // ---- routing overhead, from inside the gateway ----
  const entered = new WeakMap<object, number>();
  const overheadMs: number[] = [];
  const generate = FleetEngine.prototype.generate;
  FleetEngine.prototype.generate = function (this: FleetEngine, request: GenerationRequest) {
    const inner = generate.call(this, request);
    return (async function* () {
      entered.set(request, performance.now());
      yield* inner;
    })();
  };
  const stream = UpstreamClient.prototype.stream;
  UpstreamClient.prototype.stream = function (this: UpstreamClient, request: GenerationRequest, ...rest: unknown[]) {
    const at = entered.get(request);
    if (at !== undefined) {
      overheadMs.push(performance.now() - at);
      entered.delete(request); // first attempt only: a retry's wait is failover, not routing
    }
    return (stream as (...a: unknown[]) => ReturnType<typeof stream>).call(this, request, ...rest);
  } as typeof stream;

  // What one Redis round trip costs from this event loop meanwhile: the affinity policy makes two per request.
  const pings: number[] = [];
  let pinging = Boolean(redisUrl);
  const pinger = (async () => {
    if (!redisUrl) return;
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      while (pinging) {
        const at = performance.now();
        await redis.ping();
        pings.push(performance.now() - at);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      redis.disconnect();
    }
  })();
  const rows: Row[] = [];
  const cpuBefore = process.cpuUsage();
  let gatewayTokens = 0;
  let gatewaySeconds = 0;
  for (const policy of POLICIES) {
    overheadMs.length = 0;
    const row = await runWorkload(policy, [{ url: gateways[0]!.url, key: gatewayKeys[0]! }], policy);
    row.overhead = [...overheadMs];
    rows.push(row);
    gatewayTokens += row.outputTokens;
    gatewaySeconds += row.seconds;
  }
  if (gateways.length === 2) {
    overheadMs.length = 0;
    const row = await runWorkload("affinity, 2 gateways", gateways.map((g, i) => ({ url: g.url, key: gatewayKeys[i]! })), "affinity_2gw");
    row.overhead = [...overheadMs];
    rows.push(row);
    gatewayTokens += row.outputTokens;
    gatewaySeconds += row.seconds;
  }
  const cpu = process.cpuUsage(cpuBefore);
  pinging = false;
  await pinger;
  const rss = process.memoryUsage().rss;
  rows.push(await runWorkload("one node alone", [{ url: urls[3]!, key: keys[3]! }], "alone"));

  // ---- figures ----
  const alone = rows.at(-1)!;
  // The shared system prompt is cached on every node whatever the policy: its size is the best
  // turn-1 hit seen. Beyond it, a turn's hits are its own conversation's history.
  const shared = Math.max(...rows.flatMap((r) => r.turns.filter(([n]) => n === 0).map(([, hit]) => hit)));
  const history = (r: Row) => {
    const later = r.turns.filter(([n]) => n > 0);
    return later.reduce((s, [, hit]) => s + Math.max(0, hit - shared), 0) / later.reduce((s, [, , prompt]) => s + prompt - shared, 0);
  };
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 0) : "–");
  log("");
  log(`shared system prompt: ${shared} cached tokens on every node; "history" = turn 2+ hits beyond it / turn 2+ prompt tokens beyond it`);
  log("");
  log("| run | hit ratio | vs alone | history hit ratio | vs alone | TTFT p50 / p99 ms | output tok/s | routing overhead p50 / p99 ms | errors |");
  log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const ratio = r.hit / r.prompt;
    log(
      `| ${r.name} | ${(ratio * 100).toFixed(1)}% | ${((ratio / (alone.hit / alone.prompt)) * 100).toFixed(0)}% | ` +
        `${(history(r) * 100).toFixed(1)}% | ${((history(r) / history(alone)) * 100).toFixed(0)}% | ${ms(percentile(r.ttft, 50))} / ${ms(percentile(r.ttft, 99))} | ` +
        `${(r.outputTokens / r.seconds).toFixed(0)} | ${r.overhead.length ? `${ms(percentile(r.overhead, 50))} / ${ms(percentile(r.overhead, 99))}` : "–"} | ${r.errors} |`,
    );
  }
  const aff = rows.find((r) => r.name === "affinity")!;
  const rr = rows.find((r) => r.name === "round_robin")!;
  log("");
  log(`affinity reaches ${((aff.hit / aff.prompt / (alone.hit / alone.prompt)) * 100).toFixed(0)}% of one node's hit ratio and ${(aff.hit / aff.prompt / (rr.hit / rr.prompt)).toFixed(2)}× round_robin's`);
  log(`history only: affinity ${((history(aff) / history(alone)) * 100).toFixed(0)}% of one node's, ${(history(aff) / history(rr)).toFixed(1)}× round_robin's`);
  if (pings.length) log(`Redis PING from the gateways' event loop meanwhile: p50 ${ms(percentile(pings, 50))} ms, p99 ${ms(percentile(pings, 99))} ms (${pings.length} samples)`);
  const two = rows.find((r) => r.name === "affinity, 2 gateways");
  if (two) log(`2 gateways vs 1: hit ratio ${((two.hit / two.prompt - aff.hit / aff.prompt) * 100).toFixed(1)} points, history ${((history(two) - history(aff)) * 100).toFixed(1)} points`);
  log(
    `gateway process (gateways + bench clients, an upper bound): RSS ${(rss / 2 ** 20).toFixed(0)} MiB; CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s for ` +
      `${gatewayTokens} output tokens in ${gatewaySeconds.toFixed(1)} s = ${(((cpu.user + cpu.system) / 1e6 / gatewaySeconds) / (gatewayTokens / gatewaySeconds / 1000)).toFixed(2)} CPU-s per s per 1k tok/s`,
  );
  log(`# load average at the end ${loadAverage()}`);
  log(
    "# confounders: every process (4 nodes, the gateways, the clients) shares this machine's cores, so TTFT and tokens/s include CPU contention " +
      "and measure the generated test model, not a real one; the routing overhead is measured in the gateway's event loop, which the bench clients share; " +
      "the runs go one after another in the order shown (the first on the coldest processes); the node alone has 2 sequences where the fleet has 6, so it evicts more (its disk context cache brings some back). Run on an otherwise idle machine for comparable figures.",
  );
} finally {
  for (const g of gateways) await g.close().catch(() => undefined);
  await Promise.all(processes.map((p) => p.stop().catch(() => undefined)));
  if (redisUrl && redisPrefix) await deleteRedisKeys(redisUrl, redisPrefix).catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
}

interface Row {
  name: string;
  /** [turn, hit, prompt] per request, for the history-only ratio. */
  turns: Array<[number, number, number]>;
  hit: number;
  prompt: number;
  ttft: number[];
  outputTokens: number;
  seconds: number;
  errors: number;
  overhead: number[];
}

function gatewayLimits() {
  return { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, httpPerIpPerMinute: 0, maxConcurrentPerIp: 0, maxConcurrentPerKey: 0 };
}

/**
 * The workload against `targets` (turn n of a conversation goes to target n mod their count):
 * `clients` loops, each taking the user who has waited longest for a next turn.
 */
async function runWorkload(name: string, targets: Array<{ url: string; key: string }>, model: string): Promise<Row> {
  const row: Row = { name, turns: [], hit: 0, prompt: 0, ttft: [], outputTokens: 0, seconds: 0, errors: 0, overhead: [] };
  const conversations = Array.from({ length: users }, (_, u) => ({
    messages: [
      { role: "system", content: SYSTEM },
      { role: "user", content: `Customer ${u} here: I ordered item number ${1000 + u} last week. Where is it?` },
    ],
    turn: 0,
    busy: false,
    lastDone: 0,
  }));
  const started = performance.now();
  const client = async () => {
    for (;;) {
      const open = conversations.filter((c) => !c.busy && c.turn < turns).sort((a, b) => a.lastDone - b.lastDone);
      const next = open[0];
      if (!next) {
        if (conversations.every((c) => c.turn >= turns)) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      next.busy = true;
      const target = targets[next.turn % targets.length]!;
      const result = await streamTurn(target, model, next.messages);
      if (result) {
        row.turns.push([next.turn, result.hit, result.prompt]);
        row.hit += result.hit;
        row.prompt += result.prompt;
        row.ttft.push(result.ttftMs);
        row.outputTokens += result.completion;
        next.messages.push({ role: "assistant", content: result.content }, { role: "user", content: `Thanks. Follow-up ${next.turn + 1}: and what about the delivery?` });
      } else {
        row.errors++;
      }
      next.turn++;
      next.busy = false;
      next.lastDone = performance.now();
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  row.seconds = (performance.now() - started) / 1000;
  return row;
}

async function streamTurn(
  target: { url: string; key: string },
  model: string,
  messages: Array<{ role: string; content: string }>,
): Promise<{ hit: number; prompt: number; completion: number; ttftMs: number; content: string } | null> {
  const sent = performance.now();
  const response = await fetch(`${target.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${target.key}` },
    body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true }, max_tokens: 256 }),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    return null;
  }
  let ttftMs = NaN;
  let content = "";
  type Usage = { prompt_tokens: number; completion_tokens: number; prompt_cache_hit_tokens?: number };
  let usage: Usage | null = null;
  let failed = false;
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const chunk = JSON.parse(line.slice(6)) as { error?: unknown; usage?: Usage; choices?: Array<{ delta?: { content?: string; reasoning_content?: string } }> };
        if (chunk.error) failed = true;
        const delta = chunk.choices?.[0]?.delta;
        if ((delta?.content || delta?.reasoning_content) && Number.isNaN(ttftMs)) ttftMs = performance.now() - sent;
        content += delta?.content ?? "";
        if (chunk.usage) usage = chunk.usage;
      }
    }
  }
  if (failed || !usage) return null;
  return { hit: usage.prompt_cache_hit_tokens ?? 0, prompt: usage.prompt_tokens, completion: usage.completion_tokens, ttftMs, content };
}

async function reachableRedis(url: string): Promise<string | null> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    return url;
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
}


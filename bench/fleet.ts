/**
 * `npm run bench:fleet`: a multi-turn chat workload through a Sputnik gateway in front of three
 * Sputnik engine nodes (`sputnik serve` processes on loopback), once per routing policy in the same
 * run, plus the same workload against one node alone as the reference; then the gateway's own
 * overhead at low concurrency; then a summary of the issue's goals, met or not.
 *
 *   npm run bench:fleet -- [--users 12] [--turns 5] [--clients 6] [--parallel <users>] [--overhead-requests 40] [--model scripted]
 *
 * Workload: `users` conversations of `turns` turns sharing one long system prompt, driven by
 * `clients` concurrent clients that each send the next turn of a random ready user (seeded, the
 * same for every run), so conversations interleave in no fixed order, as many users at once do. Every node (the fleet's three and the one
 * alone) runs `parallel` sequences per model, by default one per user: one node alone can then
 * hold every conversation, and no policy loses hits to a node with too few sequences. Before the
 * runs every node has served the shared system prompt once (a fleet's steady state).
 *
 * Hit ratios, as the nodes report them through the gateway: overall (cached prompt tokens /
 * prompt tokens) and "history" (turn 2+ hits beyond the shared system prompt / turn 2+ prompt
 * tokens beyond it): every node caches the shared system prompt whatever the policy, so the
 * overall ratio mostly measures the system prompt's share of each prompt; the history ratio is
 * what routing decides. Per policy also: how many turns went to another node than the
 * conversation's previous turn ("moved"), and how many turns reused less history than the same
 * turn on the node alone (hits left on the table).
 *
 * Overhead, measured three ways:
 * - routing: from the fleet engine starting a request to its upstream request leaving (state
 *   read, choice, lease claim), per request (a hook in this process) and as the gateway exports it
 *   in /metrics (`sputnik_fleet_routing_seconds`);
 * - gateway-added: the gateway's own time per request, from the request's arrival at its HTTP
 *   server to the upstream request leaving, plus from the upstream's last event to the response's
 *   last byte handed to the socket (auth, limits, admission, billing reservation and settlement,
 *   request log, routing) — timestamps taken inside the gateway, so the bench clients' own work
 *   is not in it;
 * - end to end: the same request sent by one client at a time, alternately through the gateway
 *   and straight to the node it routes to, total time and TTFT compared.
 *
 * With Redis reachable (SPUTNIK_TEST_REDIS_URL or 127.0.0.1:6379) the routing state is in Redis,
 * as in production, and an extra run sends each turn through the other of two gateways sharing it.
 * Every policy runs on its own copy of the model on each node (a symlink under another name), so
 * one policy's conversations never sit in the KV cache another policy reads. The gateways run in
 * this process (in local single-user mode, SQLite), beside the bench clients.
 */
import fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { readLocalKey } from "../src/auth/localMode.ts";
import { loadConfig } from "../src/config/load.ts";
import { Meter } from "../src/billing/meter.ts";
import { FleetEngine } from "../src/engines/fleet/fleetEngine.ts";
import { UpstreamClient } from "../src/engines/remote/upstream.ts";
import type { EngineEvent, GenerationRequest } from "../src/engines/types.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { startService, type RunningService } from "../src/runtime/startService.ts";
import { Completion } from "../src/serving/completion.ts";
import { deleteRedisKeys } from "../test/support/services.ts";
import { percentile } from "./loadClient.ts";
import { SputnikProcess } from "./sputnikProcess.ts";
import { mulberry32 } from "../src/gguf/random.ts";

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "12" },
    turns: { type: "string", default: "5" },
    clients: { type: "string", default: "6" },
    parallel: { type: "string" },
    "overhead-requests": { type: "string", default: "40" },
    model: { type: "string", default: "scripted" },
  },
});
const users = Number(args.users);
const turns = Number(args.turns);
const clients = Number(args.clients);
const parallel = Number(args.parallel ?? users);
const overheadRequests = Number(args["overhead-requests"]);
for (const [name, v, most] of [["users", users, 200], ["turns", turns, 200], ["clients", clients, 200], ["parallel", parallel, 64], ["overhead-requests", overheadRequests, 10_000]] as const) {
  if (!Number.isInteger(v) || v < 1 || v > most) throw new Error(`--${name} must be a whole number from 1 to ${most}`);
}
// Generated models are tiny: GPU detection would cost each node seconds and change nothing.
process.env.SPUTNIK_GPU ??= "off";

const loadAverage = () => os.loadavg().map((v) => v.toFixed(2)).join(" ");
const log = (line: string) => console.log(line);
log(`# fleet bench: ${users} users × ${turns} turns, ${clients} clients, ${parallel} sequences per node and model, model ${args.model}, ${os.cpus().length} CPUs, load average ${loadAverage()}`);

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
const FLEET_COPIES = ["affinity", "least_loaded", "round_robin", "affinity_2gw", "overhead"];
for (const name of [...FLEET_COPIES, "alone"]) fs.symlinkSync(source, path.join(modelsDir, `${name}.gguf`));
const nodeConfig = (models: string[]) => ({
  models: models.map((m) => path.join(modelsDir, `${m}.gguf`)),
  threads: 1,
  // The same on every node, the one alone included: enough sequences for every conversation.
  parallel,
  contextSize: 4096,
  pullDefaultModel: false,
  // The gateway speaks as one client from one address: public per-IP limits would throttle it.
  limits: { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, httpPerIpPerMinute: 0, maxConcurrentPerIp: 0 },
});
interface TurnResult {
  user: number;
  turn: number;
  hit: number;
  prompt: number;
  /** Sent to another node than this conversation's previous turn. */
  moved: boolean;
}

interface OverheadSamples {
  routing: number[];
  before: number[];
  after: number[];
  added: number[];
}

interface Row {
  name: string;
  turns: TurnResult[];
  hit: number;
  prompt: number;
  ttft: number[];
  outputTokens: number;
  seconds: number;
  errors: number;
  moved: number;
  routing: number[];
  overhead: OverheadSamples;
}

function gatewayLimits() {
  return { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, httpPerIpPerMinute: 0, maxConcurrentPerIp: 0, maxConcurrentPerKey: 0 };
}

/**
 * Timestamps inside the gateways, per request, keyed by the `x-bench-id` header the bench sends
 * (the HTTP side) and by the same id carried in the request's first user message (the engine side:
 * an upstream request has no headers of ours).
 */
class GatewayProbe {
  private readonly arrived = new Map<string, number>();
  private readonly finished = new Map<string, number>();
  readonly fleetStarted = new Map<string, number>();
  /** Set while one request at a time runs with a prompt that carries no id of its own. */
  current: string | null = null;
  private readonly upstream = new Map<string, { sent: number; lastEvent: number; node: string }>();
  private readonly waiters = new Map<string, () => void>();
  /** Pipeline stage times of the request that `current` names (one request at a time only). */
  private readonly stageTimes = new Map<string, StageTimes>();

  constructor(gateways: RunningService[]) {
    for (const g of gateways) {
      // Before Fastify's own listener: the arrival is the moment the request is parsed off the socket.
      g.app.server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
        const id = req.headers["x-bench-id"];
        if (typeof id !== "string") return;
        this.arrived.set(id, performance.now());
        res.once("finish", () => {
          this.finished.set(id, performance.now());
          this.waiters.get(id)?.();
        });
      });
    }
    const probe = this;
    // Where the gateway's own time goes, one request at a time: the pipeline's admission stages
    // (limits, queue, billing reservation) and its settlement, timed around the methods that run them.
    const timed = <K extends string>(target: Record<K, (...a: never[]) => Promise<unknown>>, name: K, start: keyof StageTimes, end: keyof StageTimes) => {
      const original = target[name];
      target[name] = async function (this: unknown, ...a: never[]) {
        const id = probe.current;
        const times = id ? probe.stageTimesOf(id) : null;
        if (times) times[start] = performance.now();
        try {
          return await original.apply(this, a);
        } finally {
          if (times) times[end] = performance.now();
        }
      } as (typeof target)[K];
    };
    const completion = Completion.prototype as unknown as Record<"runAdmission" | "commit", () => Promise<unknown>>;
    timed(completion, "runAdmission", "admissionStart", "admissionEnd");
    timed(completion, "commit", "settleStart", "settleEnd");
    timed(Meter.prototype as unknown as Record<"reserve", () => Promise<unknown>>, "reserve", "reserveStart", "reserveEnd");
    // The fleet engine starts a request when the pipeline hands it over (after admission and the
    // billing reservation); routing ends when its first upstream request leaves.
    const generate = FleetEngine.prototype.generate;
    FleetEngine.prototype.generate = function (this: FleetEngine, request: GenerationRequest) {
      const inner = generate.call(this, request);
      return (async function* () {
        const id = probe.engineId(request);
        if (id && !probe.fleetStarted.has(id)) probe.fleetStarted.set(id, performance.now());
        yield* inner;
      })();
    };
    const stream = UpstreamClient.prototype.stream;
    UpstreamClient.prototype.stream = function (this: UpstreamClient, request: GenerationRequest, ...rest: unknown[]) {
      const inner = (stream as (...a: unknown[]) => AsyncIterable<EngineEvent>).call(this, request, ...rest);
      const id = probe.engineId(request);
      const node = this.target.baseUrl;
      return (async function* () {
        const entry = { sent: performance.now(), lastEvent: NaN, node };
        if (id && !probe.upstream.has(id)) probe.upstream.set(id, entry); // the first attempt only
        for await (const event of inner) {
          entry.lastEvent = performance.now();
          yield event;
        }
      })();
    } as typeof stream;
  }

  /** The id an engine-side request carries: `<bench id>#<its user messages>`, the turn's `x-bench-id`. */
  engineId(request: Pick<GenerationRequest, "messages">): string | null {
    if (this.current) return this.current;
    const id = benchIdOf(request);
    return id ? `${id}#${request.messages.filter((m) => m.role === "user").length}` : null;
  }

  /** Resolves once the gateway has sent the response's last byte for `id`. */
  async done(id: string): Promise<void> {
    if (this.finished.has(id)) return;
    await new Promise<void>((resolve) => {
      this.waiters.set(id, resolve);
      setTimeout(resolve, 2000); // a response that never finishes is reported as missing, not awaited forever
    });
    this.waiters.delete(id);
  }

  private stageTimesOf(id: string): StageTimes {
    let times = this.stageTimes.get(id);
    if (!times) this.stageTimes.set(id, (times = { admissionStart: NaN, admissionEnd: NaN, reserveStart: NaN, reserveEnd: NaN, settleStart: NaN, settleEnd: NaN }));
    return times;
  }

  /** The request's figures (ms), or null where a timestamp is missing; forgets them. */
  take(id: string): { routing: number; before: number; after: number; node: string; stages: Record<StageName, number> | null } | null {
    const arrived = this.arrived.get(id);
    const finished = this.finished.get(id);
    const started = this.fleetStarted.get(id);
    const up = this.upstream.get(id);
    const t = this.stageTimes.get(id);
    for (const map of [this.arrived, this.finished, this.fleetStarted, this.upstream, this.stageTimes]) map.delete(id);
    if (arrived === undefined || finished === undefined || started === undefined || !up || Number.isNaN(up.lastEvent)) return null;
    const stages =
      t && Object.values(t).every(Number.isFinite)
        ? {
            http: t.admissionStart - arrived,
            admission: t.admissionEnd - t.admissionStart - (t.reserveEnd - t.reserveStart),
            reserve: t.reserveEnd - t.reserveStart,
            handover: started - t.admissionEnd,
            routing: up.sent - started,
            toSettle: t.settleStart - up.lastEvent,
            settle: t.settleEnd - t.settleStart,
            tail: finished - t.settleEnd,
          }
        : null;
    return { routing: up.sent - started, before: up.sent - arrived, after: finished - up.lastEvent, node: up.node, stages };
  }
}


interface StageTimes {
  admissionStart: number;
  admissionEnd: number;
  reserveStart: number;
  reserveEnd: number;
  settleStart: number;
  settleEnd: number;
}

/** The gateway's own time of one request, in the order it is spent (see STAGE_LABELS). */
type StageName = "http" | "admission" | "reserve" | "handover" | "routing" | "toSettle" | "settle" | "tail";
const STAGE_LABELS: Record<StageName, string> = {
  http: "arrival → pipeline: HTTP parsing, auth, validation, resolve and authorize",
  admission: "admission: rate limits, caps, a place in the queue",
  reserve: "billing reservation (plan, quota, prices, ledger entry)",
  handover: "reserved → the fleet engine starts (queue turn, generation span)",
  routing: "routing: state read, choice, upstream request sent",
  toSettle: "upstream's last event → settlement starts",
  settle: "settlement: ledger, balance, request log in one transaction",
  tail: "settled → last byte out (usage chunk, [DONE])",
};

/** The bench id a request carries in its first user message: `[bench <id>]`. */
function benchIdOf(request: Pick<GenerationRequest, "messages">): string | null {
  const first = request.messages.find((m) => m.role === "user");
  return first ? (/\[bench ([^\]]+)\]/.exec(first.content)?.[1] ?? null) : null;
}

/**
 * The workload against `targets` (turn n of a conversation goes to target n mod their count):
 * `clients` loops, each taking the user who has waited longest for a next turn.
 */
async function runWorkload(name: string, targets: Array<{ url: string; key: string }>, model: string, probe: GatewayProbe | null): Promise<Row> {
  const row: Row = { name, turns: [], hit: 0, prompt: 0, ttft: [], outputTokens: 0, seconds: 0, errors: 0, moved: 0, routing: [], overhead: { routing: [], before: [], after: [], added: [] } };
  const tag = `${model}-${Date.now().toString(36)}`;
  const conversations = Array.from({ length: users }, (_, u) => ({
    messages: [
      { role: "system", content: SYSTEM },
      { role: "user", content: `[bench ${tag}-u${u}] Customer ${u} here: I ordered item number ${1000 + u} last week. Where is it?` },
    ],
    turn: 0,
    busy: false,
    node: null as string | null,
  }));
  const random = mulberry32(12);
  const started = performance.now();
  const client = async () => {
    for (;;) {
      // A random ready user (the same seeded sequence for every run): users come back in no fixed
      // order, so no policy's turn counter lines a conversation's turns up on one node by arithmetic
      // (with users taken in a fixed cycle and 12 users on 3 nodes, round_robin would).
      const open = conversations.filter((c) => !c.busy && c.turn < turns);
      const next = open[Math.floor(random() * open.length)];
      if (!next) {
        if (conversations.every((c) => c.turn >= turns)) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      next.busy = true;
      const u = conversations.indexOf(next);
      const target = targets[next.turn % targets.length]!;
      const id = `${tag}-u${u}#${next.turn + 1}`;
      const result = await streamTurn(target, model, next.messages, id);
      if (result) {
        let moved = false;
        if (probe) {
          await probe.done(id);
          const inside = probe.take(id);
          if (inside) {
            row.routing.push(inside.routing);
            row.overhead.routing.push(inside.routing);
            row.overhead.before.push(inside.before);
            row.overhead.after.push(inside.after);
            row.overhead.added.push(inside.before + inside.after);
            moved = next.node !== null && next.node !== inside.node;
            next.node = inside.node;
          }
        }
        if (moved) row.moved++;
        row.turns.push({ user: u, turn: next.turn, hit: result.hit, prompt: result.prompt, moved });
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
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  row.seconds = (performance.now() - started) / 1000;
  return row;
}

/**
 * One client, one request at a time, the same short prompt: through the gateway (the `overhead`
 * model, affinity: every request to one node), then straight to that node, alternately.
 */
async function measureOverhead(gateway: RunningService, gatewayKey: string, nodeUrls: string[], nodeKeys: string[], probe: GatewayProbe) {
  const inside: OverheadSamples = { routing: [], before: [], after: [], added: [] };
  const stages = Object.fromEntries(Object.keys(STAGE_LABELS).map((k) => [k, [] as number[]])) as Record<StageName, number[]>;
  const gatewayTotal: number[] = [];
  const directTotal: number[] = [];
  const gatewayTtft: number[] = [];
  const directTtft: number[] = [];
  const totalDiff: number[] = [];
  const ttftDiff: number[] = [];
  const tag = `overhead-${Date.now().toString(36)}`;
  const messages = [
    { role: "system", content: SYSTEM },
    { role: "user", content: "What are your opening hours?" },
  ];
  let node: { url: string; key: string } | null = null;
  // Warm-up: the first request fills the node's cache and tells which node the gateway picks.
  for (let i = 0; i < overheadRequests + 3; i++) {
    const id = `${tag}#${i}`;
    probe.current = id;
    const via = await streamTurn({ url: gateway.url, key: gatewayKey }, "overhead", messages, id, 16);
    await probe.done(id);
    probe.current = null;
    const figures = probe.take(id);
    if (!node && figures) {
      const index = nodeUrls.findIndex((u) => `${u}/v1` === figures.node);
      node = { url: nodeUrls[index]!, key: nodeKeys[index]! };
    }
    if (!node) continue;
    const direct = await streamTurn(node, "overhead", messages, null, 16);
    if (i < 3 || !via || !direct || !figures) continue;
    inside.routing.push(figures.routing);
    inside.before.push(figures.before);
    inside.after.push(figures.after);
    inside.added.push(figures.before + figures.after);
    if (figures.stages) for (const [k, v] of Object.entries(figures.stages)) stages[k as StageName].push(v);
    gatewayTotal.push(via.totalMs);
    directTotal.push(direct.totalMs);
    gatewayTtft.push(via.ttftMs);
    directTtft.push(direct.ttftMs);
    totalDiff.push(via.totalMs - direct.totalMs);
    ttftDiff.push(via.ttftMs - direct.ttftMs);
  }
  const q = (v: number[]) => ({ p50: percentile(v, 50), p99: percentile(v, 99) });
  return { pairs: totalDiff.length, inside, stages, gatewayTotal: q(gatewayTotal), directTotal: q(directTotal), gatewayTtft: q(gatewayTtft), directTtft: q(directTtft), totalDiff: q(totalDiff), ttftDiff: q(ttftDiff) };
}

async function streamTurn(
  target: { url: string; key: string },
  model: string,
  messages: Array<{ role: string; content: string }>,
  benchId: string | null,
  maxTokens = 256,
): Promise<{ hit: number; prompt: number; completion: number; ttftMs: number; totalMs: number; content: string } | null> {
  const sent = performance.now();
  const response = await fetch(`${target.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${target.key}`, ...(benchId ? { "x-bench-id": benchId } : {}) },
    body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true }, max_tokens: maxTokens }),
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
  const totalMs = performance.now() - sent;
  if (failed || !usage) return null;
  return { hit: usage.prompt_cache_hit_tokens ?? 0, prompt: usage.prompt_tokens, completion: usage.completion_tokens, ttftMs, totalMs, content };
}

/** The gateway's exported routing histogram: count, share within 1 ms and 5 ms, mean. */
async function routingFromMetrics(url: string, key: string): Promise<{ count: number; within1ms: number; within5ms: number; meanMs: number }> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
  let count = 0;
  let sum = 0;
  let le1 = 0;
  let le5 = 0;
  for (const m of text.matchAll(/^sputnik_fleet_routing_seconds_bucket\{model="[^"]+",le="([^"]+)"\} (\S+)$/gm)) {
    if (m[1] === "0.001") le1 += Number(m[2]);
    if (m[1] === "0.005") le5 += Number(m[2]);
  }
  for (const m of text.matchAll(/^sputnik_fleet_routing_seconds_count\{[^}]*\} (\S+)$/gm)) count += Number(m[1]);
  for (const m of text.matchAll(/^sputnik_fleet_routing_seconds_sum\{[^}]*\} (\S+)$/gm)) sum += Number(m[1]);
  return { count, within1ms: count ? le1 / count : NaN, within5ms: count ? le5 / count : NaN, meanMs: count ? (sum / count) * 1000 : NaN };
}

/** Redis PINGs every 50 ms from this event loop while the workloads run. */
class Pinger {
  private readonly samples: number[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(url: string | null) {
    this.loop = (async () => {
      if (!url) return;
      const redis = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        while (this.running) {
          const at = performance.now();
          await redis.ping();
          this.samples.push(performance.now() - at);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        redis.disconnect();
      }
    })();
  }

  async stop(): Promise<number[]> {
    this.running = false;
    await this.loop;
    return this.samples;
  }
}

/**
 * What else ran on the machine meanwhile: the CPUs' busy time (/proc/stat) less this bench's own
 * (its process and its nodes, /proc/<pid>/stat). Linux only; elsewhere nothing is reported.
 */
class CpuWatch {
  readonly loadAtStart = loadAverage();
  private from: { at: number; busy: number; ours: number; pids: Array<number | undefined> } | null = null;

  start(pids: Array<number | undefined>): void {
    const busy = machineBusySeconds();
    this.from = busy === null ? null : { at: performance.now(), busy, ours: oursSeconds(pids), pids };
  }

  stop(): { seconds: number; busyShare: number; ours: number; others: number } | null {
    const from = this.from;
    const busy = machineBusySeconds();
    if (!from || busy === null) return null;
    const seconds = (performance.now() - from.at) / 1000;
    const machine = busy - from.busy;
    const ours = oursSeconds(from.pids) - from.ours;
    return { seconds, busyShare: machine / (seconds * os.cpus().length), ours, others: Math.max(0, machine - ours) };
  }
}

const TICKS = 100; // USER_HZ on Linux

function machineBusySeconds(): number | null {
  try {
    const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    const busy = fields.slice(0, 8).reduce((s, v, i) => (i === 3 || i === 4 ? s : s + v), 0);
    return busy / TICKS;
  } catch {
    return null;
  }
}

function oursSeconds(pids: Array<number | undefined>): number {
  const self = process.cpuUsage();
  let total = (self.user + self.system) / 1e6;
  for (const pid of pids) {
    if (pid === undefined) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime
    } catch {
      // gone
    }
  }
  return total;
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

async function main(): Promise<void> {
  const processes: SputnikProcess[] = [];
  const gateways: RunningService[] = [];
  let redisPrefix: string | null = null;
  let redisUrl: string | null = null;
  const cpu = new CpuWatch();

  try {
    const started = performance.now();
    const nodeDirs = [0, 1, 2, 3].map((i) => {
      const dir = path.join(work, `node${i}`);
      fs.mkdirSync(dir, { recursive: true });
      return dir;
    });
    for (let i = 0; i < 4; i++) processes.push(new SputnikProcess(nodeConfig(i < 3 ? FLEET_COPIES : ["alone"]), nodeDirs[i]!));
    const urls = await Promise.all(processes.map((p) => p.start()));
    const keys = await Promise.all(nodeDirs.map(async (d) => (await readLocalKey(d))!));
    log(`# 4 nodes up in ${Math.round(performance.now() - started)} ms (3 for the fleet, 1 alone), load average ${loadAverage()}`);

    redisUrl = await reachableRedis(process.env.SPUTNIK_TEST_REDIS_URL || "redis://127.0.0.1:6379");
    redisPrefix = redisUrl ? `sputnik-bench:${process.pid}:${Date.now()}:` : null;
    const replicas = [0, 1, 2].map((i) => ({ baseUrl: `${urls[i]}/v1`, apiKey: keys[i], name: `node${i}`, maxConcurrency: parallel }));
    const shared = redisPrefix ? { stateKeyPrefix: `${redisPrefix}fleet:` } : {};
    const remoteModels = [
      ...POLICIES.map((routing) => ({ id: routing, routing, replicas, contextLength: 4096, ...shared })),
      { id: "affinity_2gw", routing: "affinity", replicas, contextLength: 4096, ...shared },
      { id: "overhead", routing: "affinity", replicas, contextLength: 4096, ...shared },
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

    const probe = new GatewayProbe(gateways);

    // Steady state: a fleet that has run a while has the shared system prompt cached on every node.
    // Without this, each policy's first turn on each node misses it, and how many nodes a small
    // workload happens to touch would swing the overall ratios by several points.
    const hello = [
      { role: "system", content: SYSTEM },
      { role: "user", content: "Hello." },
    ];
    for (let i = 0; i < 3; i++) for (const copy of FLEET_COPIES) await streamTurn({ url: urls[i]!, key: keys[i]! }, copy, hello, null, 1);
    await streamTurn({ url: urls[3]!, key: keys[3]! }, "alone", hello, null, 1);

    // What one Redis round trip costs from this event loop meanwhile: affinity makes two per request.
    const pings = new Pinger(redisUrl);
    cpu.start(processes.map((p) => p.pid));
    const rows: Row[] = [];
    let gatewayTokens = 0;
    let gatewaySeconds = 0;
    const cpuBefore = process.cpuUsage();
    for (const policy of POLICIES) {
      const row = await runWorkload(policy, [{ url: gateways[0]!.url, key: gatewayKeys[0]! }], policy, probe);
      rows.push(row);
      gatewayTokens += row.outputTokens;
      gatewaySeconds += row.seconds;
    }
    if (gateways.length === 2) {
      const row = await runWorkload("affinity, 2 gateways", gateways.map((g, i) => ({ url: g.url, key: gatewayKeys[i]! })), "affinity_2gw", probe);
      rows.push(row);
      gatewayTokens += row.outputTokens;
      gatewaySeconds += row.seconds;
    }
    const gatewayCpu = process.cpuUsage(cpuBefore);
    const rss = process.memoryUsage().rss;
    const alone = await runWorkload("one node alone", [{ url: urls[3]!, key: keys[3]! }], "alone", null);
    rows.push(alone);
    const workloadCpu = cpu.stop();
    const pingsUnderLoad = await pings.stop();

    // ---- overhead at low concurrency: one request at a time, gateway and node alternately ----
    cpu.start(processes.map((p) => p.pid));
    const quiet = await measureOverhead(gateways[0]!, gatewayKeys[0]!, urls, keys, probe);
    const overheadCpu = cpu.stop();
    const exported = await routingFromMetrics(gateways[0]!.url, gatewayKeys[0]!);

    // ---- figures ----
    const sharedTokens = Math.max(...rows.flatMap((r) => r.turns.filter((t) => t.turn === 0).map((t) => t.hit)));
    const overall = (r: Row) => r.hit / r.prompt;
    const history = (r: Row) => {
      const later = r.turns.filter((t) => t.turn > 0);
      return later.reduce((s, t) => s + Math.max(0, t.hit - sharedTokens), 0) / later.reduce((s, t) => s + t.prompt - sharedTokens, 0);
    };
    // Turns that reused less history than the same turn of the same conversation on the node alone.
    const aloneHit = new Map(alone.turns.map((t) => [`${t.user}:${t.turn}`, t.hit]));
    const leftOnTable = (r: Row) => r.turns.filter((t) => t.turn > 0 && t.hit < (aloneHit.get(`${t.user}:${t.turn}`) ?? 0));
    const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 0) : "–");
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    log("");
    log(`shared system prompt: ${sharedTokens} cached tokens on every node (${pct(sharedTokens / (alone.prompt / alone.turns.length))} of the mean prompt)`);
    log("");
    log("| run | hit ratio | vs alone | history hit ratio | vs alone | moved turns | turns below alone (moved) | TTFT p50 / p99 ms | output tok/s | routing p50 / p99 ms | errors |");
    log("|---|---|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      const below = leftOnTable(r);
      const isAlone = r === alone;
      log(
        `| ${r.name} | ${pct(overall(r))} | ${((overall(r) / overall(alone)) * 100).toFixed(0)}% | ${pct(history(r))} | ${((history(r) / history(alone)) * 100).toFixed(0)}% | ` +
          `${isAlone ? "–" : `${r.moved}/${r.turns.filter((t) => t.turn > 0).length}`} | ${isAlone ? "–" : `${below.length} (${below.filter((t) => t.moved).length})`} | ` +
          `${ms(percentile(r.ttft, 50))} / ${ms(percentile(r.ttft, 99))} | ${(r.outputTokens / r.seconds).toFixed(0)} | ` +
          `${r.routing.length ? `${ms(percentile(r.routing, 50))} / ${ms(percentile(r.routing, 99))}` : "–"} | ${r.errors} |`,
      );
    }
    log("");
    log("Gateway overhead per request (ms, p50 / p99):");
    log("| measured | requests | routing | before upstream (arrival → upstream sent) | after upstream (last event → last byte out) | gateway-added (both) |");
    log("|---|---|---|---|---|---|");
    const overheadRow = (name: string, o: OverheadSamples) =>
      log(
        `| ${name} | ${o.added.length} | ${ms(percentile(o.routing, 50))} / ${ms(percentile(o.routing, 99))} | ${ms(percentile(o.before, 50))} / ${ms(percentile(o.before, 99))} | ` +
          `${ms(percentile(o.after, 50))} / ${ms(percentile(o.after, 99))} | ${ms(percentile(o.added, 50))} / ${ms(percentile(o.added, 99))} |`,
      );
    overheadRow("one request at a time", quiet.inside);
    const aff = rows.find((r) => r.name === "affinity")!;
    overheadRow(`affinity workload (${clients} clients)`, aff.overhead);
    log("");
    log(`Where the gateway-added time goes, one request at a time (${quiet.stages.http.length} requests; medians do not add up exactly):`);
    log("| stage | p50 ms | p99 ms |");
    log("|---|---|---|");
    for (const [k, label] of Object.entries(STAGE_LABELS)) {
      const v = quiet.stages[k as StageName];
      log(`| ${label} | ${ms(percentile(v, 50))} | ${ms(percentile(v, 99))} |`);
    }
    log(
      `End to end, one request at a time (${quiet.pairs} pairs, same prompt, max_tokens 16, gateway minus direct to the node it routes to): ` +
        `total p50 ${ms(quiet.totalDiff.p50)} ms (gateway ${ms(quiet.gatewayTotal.p50)}, direct ${ms(quiet.directTotal.p50)}), ` +
        `TTFT p50 ${ms(quiet.ttftDiff.p50)} ms (gateway ${ms(quiet.gatewayTtft.p50)}, direct ${ms(quiet.directTtft.p50)}); p99 of the paired total difference ${ms(quiet.totalDiff.p99)} ms`,
    );
    log(
      `/metrics sputnik_fleet_routing_seconds (gateway 1, all runs): ${exported.count} requests, ${pct(exported.within1ms)} within 1 ms, ${pct(exported.within5ms)} within 5 ms, mean ${ms(exported.meanMs)} ms`,
    );
    if (pingsUnderLoad.length) log(`Redis PING from this event loop during the workloads: p50 ${ms(percentile(pingsUnderLoad, 50))} ms, p99 ${ms(percentile(pingsUnderLoad, 99))} ms (${pingsUnderLoad.length} samples)`);
    const two = rows.find((r) => r.name === "affinity, 2 gateways");
    log(
      `gateway process (gateways + bench clients, an upper bound): RSS ${(rss / 2 ** 20).toFixed(0)} MiB; CPU ${((gatewayCpu.user + gatewayCpu.system) / 1e6).toFixed(1)} s for ` +
        `${gatewayTokens} output tokens in ${gatewaySeconds.toFixed(1)} s = ${(((gatewayCpu.user + gatewayCpu.system) / 1e6 / gatewaySeconds) / (gatewayTokens / gatewaySeconds / 1000)).toFixed(2)} CPU-s per s per 1k tok/s`,
    );

    // ---- the goals ----
    const rr = rows.find((r) => r.name === "round_robin")!;
    const goals: Array<[string, string, boolean]> = [
      ["affinity hit ratio ≥ 90% of one node alone (overall)", `${((overall(aff) / overall(alone)) * 100).toFixed(1)}%`, overall(aff) >= 0.9 * overall(alone)],
      ["affinity hit ratio ≥ 90% of one node alone (history)", `${((history(aff) / history(alone)) * 100).toFixed(1)}%`, history(aff) >= 0.9 * history(alone)],
      ["affinity ≥ 2× round_robin (overall)", `${(overall(aff) / overall(rr)).toFixed(2)}× (at most ${(1 / overall(rr)).toFixed(2)}× is possible: round_robin already hits ${pct(overall(rr))})`, overall(aff) >= 2 * overall(rr)],
      ["affinity ≥ 2× round_robin (history)", `${(history(aff) / history(rr)).toFixed(2)}×`, history(aff) >= 2 * history(rr)],
      ["routing p50 < 1 ms (workload, per request)", `${ms(percentile(aff.routing, 50))} ms`, percentile(aff.routing, 50) < 1],
      ["routing p99 < 5 ms (workload, per request)", `${ms(percentile(aff.routing, 99))} ms`, percentile(aff.routing, 99) < 5],
      ["gateway-added p50 < 1 ms (one at a time)", `${ms(percentile(quiet.inside.added, 50))} ms`, percentile(quiet.inside.added, 50) < 1],
      ["gateway-added p99 < 5 ms (one at a time)", `${ms(percentile(quiet.inside.added, 99))} ms`, percentile(quiet.inside.added, 99) < 5],
      ["end-to-end difference p50 < 1 ms (one at a time)", `${ms(quiet.totalDiff.p50)} ms`, quiet.totalDiff.p50 < 1],
      ["end-to-end difference p99 < 5 ms (one at a time)", `${ms(quiet.totalDiff.p99)} ms`, quiet.totalDiff.p99 < 5],
    ];
    if (two) {
      goals.push(
        ["2 gateways: hit ratio within 2% of 1 gateway (overall)", `${(((overall(two) - overall(aff)) / overall(aff)) * 100).toFixed(1)}%`, Math.abs(overall(two) / overall(aff) - 1) <= 0.02],
        ["2 gateways: hit ratio within 2% of 1 gateway (history)", `${(((history(two) - history(aff)) / history(aff)) * 100).toFixed(1)}%`, Math.abs(history(two) / history(aff) - 1) <= 0.02],
      );
    } else {
      goals.push(["2 gateways: hit ratio within 2% of 1 gateway", "not run (no Redis)", false]);
    }
    log("");
    log("| goal (issue 12) | measured | met |");
    log("|---|---|---|");
    for (const [goal, measured, met] of goals) log(`| ${goal} | ${measured} | ${met ? "yes" : "NO"} |`);
    log("");
    log("Confounders:");
    log(`- load average: ${cpu.loadAtStart} at the start, ${loadAverage()} at the end (1/5/15 min) on ${os.cpus().length} CPUs`);
    for (const [name, c] of [["workloads", workloadCpu], ["overhead runs", overheadCpu]] as const) {
      if (c) {
        log(
          `- during the ${name}: ${c.seconds.toFixed(1)} s wall, the machine's CPUs were ${pct(c.busyShare)} busy; this bench (its process and nodes) used ${c.ours.toFixed(1)} CPU-s, ` +
            `other processes ${c.others.toFixed(1)} CPU-s (${pct(c.others / (c.seconds * os.cpus().length))} of the machine)${c.others > 0.1 * c.seconds * os.cpus().length ? " — NOT a quiet machine: latencies are inflated" : ""}`,
        );
      }
    }
    log(
      "- every process (4 nodes, the gateways, the clients) shares this machine's cores: TTFT and tokens/s include that contention and measure the generated test model, not a real one; " +
        "the gateways share their event loop with the bench clients (the gateway-added figures are taken inside the gateway, but a busy loop delays them too); the gateways use SQLite in local mode (production: PostgreSQL, a network round trip per query); " +
        "the runs go one after another in the order shown, the first on the coldest processes.",
    );
  } finally {
    for (const g of gateways) await g.close().catch(() => undefined);
    await Promise.all(processes.map((p) => p.stop().catch(() => undefined)));
    if (redisUrl && redisPrefix) await deleteRedisKeys(redisUrl, redisPrefix).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();

/**
 * The fleet's load signals, prefix index and cache-reporting note through a real gateway:
 *   - real Sputnik nodes as replicas, whose own /metrics (queue length, active sequences) the
 *     gateway reads and routes on (`least_loaded`);
 *   - tiny in-test HTTP servers imitating vLLM where the figures must be set by hand: their
 *     /metrics imitates vLLM's output format (text format 0.0.4, the gauge names from vLLM's
 *     "Production Metrics" docs: vllm:num_requests_waiting, vllm:num_requests_running,
 *     vllm:kv_cache_usage_perc, labelled by model_name and engine), and their streamed answers end
 *     with a usage chunk without cache figures, as vLLM's do without --enable-prompt-tokens-details;
 *   - the prefix index shared between two gateways' routing states through Redis.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { prefixHashes } from "../src/engines/fleet/routing.ts";
import { RedisRoutingState } from "../src/engines/fleet/routingState.ts";
import type { ChatMessage, ReplicaState } from "../src/engines/types.ts";
import { redisUrlOrSkip } from "./support/services.ts";
import { startTestService, type TestService } from "./support/service.ts";

interface FakeVllm {
  url: string;
  name: string;
  gauges: { waiting: number; running: number; kv: number };
  /** The last user message of each chat request it received. */
  received: string[];
  close(): Promise<void>;
}

async function fakeVllm(name: string): Promise<FakeVllm> {
  const fake: FakeVllm = { url: "", name, gauges: { waiting: 0, running: 0, kv: 0.1 }, received: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      const { waiting, running, kv } = fake.gauges;
      const labels = 'engine="0",model_name="deepseek-r1"';
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(
        [
          "# HELP vllm:num_requests_running Number of requests in model execution batches.",
          "# TYPE vllm:num_requests_running gauge",
          `vllm:num_requests_running{${labels}} ${running.toFixed(1)}`,
          "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
          "# TYPE vllm:num_requests_waiting gauge",
          `vllm:num_requests_waiting{${labels}} ${waiting.toFixed(1)}`,
          "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
          "# TYPE vllm:kv_cache_usage_perc gauge",
          `vllm:kv_cache_usage_perc{${labels}} ${kv}`,
          "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
          "# TYPE vllm:prompt_tokens_total counter",
          `vllm:prompt_tokens_total{${labels}} 1234.0`,
          "",
        ].join("\n"),
      );
      return;
    }
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [{ id: "deepseek-r1", object: "model" }] }));
      return;
    }
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const messages = (JSON.parse(body) as { messages: ChatMessage[] }).messages;
      fake.received.push(messages.at(-1)!.content);
      const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "deepseek-r1" };
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "ok" }, finish_reason: null }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`);
      // vLLM without --enable-prompt-tokens-details: no cache figure at all.
      res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 20, completion_tokens: 1, total_tokens: 21, prompt_tokens_details: null } })}\n\n`);
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  fake.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fake;
}

let nodes: TestService[];
let fakes: FakeVllm[];
let gateway: TestService;
let client: OpenAI;

before(async () => {
  nodes = [];
  for (let i = 0; i < 2; i++) nodes.push(await startTestService({ models: ["scripted-long"] }));
  fakes = [];
  for (let i = 0; i < 3; i++) fakes.push(await fakeVllm(`v${i}`));
  gateway = await startTestService({
    models: [],
    config: {
      remoteModels: [
        {
          id: "nodes",
          upstreamModel: "scripted-long",
          routing: "least_loaded",
          metrics: { intervalMs: 150 },
          replicas: nodes.map((node, i) => ({ baseUrl: `${node.url}/v1`, apiKey: node.localKey!, name: `node${i}`, maxConcurrency: 8 })),
        },
        // One upstream (the remote engine), for the cache-reporting note.
        { id: "single", baseUrl: fakes[1]!.url, upstreamModel: "deepseek-r1" },
        {
          id: "vl",
          upstreamModel: "deepseek-r1",
          metrics: { intervalMs: 100, maxKvUsage: 0.9 },
          replicas: fakes.map((f) => ({ baseUrl: f.url, name: f.name, maxConcurrency: 8 })),
        },
      ],
    },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.localKey!, maxRetries: 0 });
});

after(async () => {
  await gateway?.stop();
  for (const node of nodes ?? []) await node.stop();
  for (const fake of fakes ?? []) await fake.close();
});

function replicasOf(model: string): ReplicaState[] {
  return gateway.router.stats().find((a) => a.model === model)!.replicas!;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(replicasOf("vl").map((r) => r.signals))}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("real Sputnik nodes: the gateway reads their queue and running figures and least_loaded sends work away from the busy one", async () => {
  const signals = () => replicasOf("nodes").map((r) => r.signals!);
  await waitFor("both nodes' first readings", () => signals().every((s) => s.source === "sputnik" && s.error === null));
  assert.deepEqual(
    signals().map((s) => [s.waiting, s.running]),
    [
      [0, 0],
      [0, 0],
    ],
  );
  // Someone else's traffic straight to node0 (not through this gateway): long answers, more than
  // its 2 sequences (its per-client caps may refuse some; those it takes are enough).
  const abort = new AbortController();
  const direct = Array.from({ length: 6 }, () =>
    fetch(`${nodes[0]!.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...nodes[0]!.localAuth },
      body: JSON.stringify({ model: "scripted-long", stream: true, messages: [{ role: "user", content: "Think for a long time" }] }),
      signal: abort.signal,
    }).then(
      (r) => r.text(), // read as it streams, so the node keeps generating until the abort
      () => undefined,
    ).catch(() => undefined),
  );
  try {
    await waitFor("node0's queue in its readings", () => (signals()[0]!.running ?? 0) >= 1 && (signals()[0]!.waiting ?? 0) >= 1);
    const before = replicasOf("nodes").map((r) => r.requests);
    for (let i = 0; i < 4; i++) {
      const r = await client.chat.completions.create({ model: "nodes", max_tokens: 4, messages: [{ role: "user", content: `Quick ${i}` }] });
      assert.ok(r.choices[0]);
    }
    const sent = replicasOf("nodes").map((r, i) => r.requests - before[i]!);
    assert.deepEqual(sent, [0, 4], "node0's own queue kept this gateway's requests away, though this gateway had nothing in flight there");

    const health = (await (await fetch(`${gateway.url}/health`)).json()) as { replicas: Array<{ model: string; name: string; signals?: { source: string; waiting: number } }> };
    const node0 = health.replicas.find((r) => r.model === "nodes" && r.name === "node0")!;
    assert.equal(node0.signals?.source, "sputnik");
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(metrics, /sputnik_replica_engine_running\{model="nodes",replica="node0"\} [1-9]/);
    assert.match(metrics, /sputnik_replica_engine_waiting\{model="nodes",replica="node1"\} 0/);
  } finally {
    abort.abort();
    await Promise.all(direct);
  }
  await waitFor("node0 idle again in its readings", () => signals()[0]!.running === 0 && signals()[0]!.waiting === 0);
  const models = (await (await fetch(`${gateway.url}/v1/models`, { headers: gateway.localAuth })).json()) as { data: Array<{ id: string; cache_reporting?: string }> };
  assert.equal(models.data.find((m) => m.id === "nodes")!.cache_reporting, "reported", "Sputnik nodes report their cache hits");
});

test("vLLM-shaped replicas: a prompt follows its longest prefix, not the key its opening shares; waiting and KV usage steer affinity away", async () => {
  const signals = () => replicasOf("vl").map((r) => r.signals!);
  await waitFor("every replica's first reading", () => signals().every((s) => s.source === "vllm" && s.ageMs !== null));
  const where = (content: string) => fakes.filter((f) => f.received.includes(content)).map((f) => f.name);
  const ask = async (messages: ChatMessage[]) => {
    const r = await client.chat.completions.create({ model: "vl", messages: messages.map(({ role, content }) => ({ role, content })) as never });
    assert.equal(r.choices[0]!.message.content, "ok");
  };
  const system: ChatMessage = { role: "system", content: "You are a helpful assistant." };
  const opening: ChatMessage[] = [system, { role: "user", content: "Hello" }];
  await ask(opening);
  const [home] = where("Hello");
  assert.ok(home);
  const a2 = [...opening, { role: "assistant" as const, content: "ok" }, { role: "user" as const, content: "About Rome" }];
  await ask(a2);
  assert.deepEqual(where("About Rome"), [home], "turn 2 on turn 1's replica");

  // The home replica's engine is busy with other routers' traffic: conversation B, same opening, goes elsewhere.
  const busy = fakes.find((f) => f.name === home)!;
  busy.gauges.waiting = 50;
  busy.gauges.running = 16;
  await waitFor("the busy reading", () => replicasOf("vl").find((r) => r.name === home)!.signals!.waiting === 50);
  const b2 = [...opening, { role: "assistant" as const, content: "ok" }, { role: "user" as const, content: "About Oslo" }];
  await ask(b2);
  const [away] = where("About Oslo");
  assert.ok(away && away !== home, `B left the busy replica (${home}) for ${away}`);

  busy.gauges.waiting = 0;
  busy.gauges.running = 0;
  await waitFor("the idle reading", () => replicasOf("vl").find((r) => r.name === home)!.signals!.waiting === 0);
  // Both conversations share one leading-messages key, last sent with B; each goes back to the replica that holds its own prefix.
  await ask([...a2, { role: "assistant", content: "ok" }, { role: "user", content: "More on Rome" }]);
  await ask([...b2, { role: "assistant", content: "ok" }, { role: "user", content: "More on Oslo" }]);
  assert.deepEqual([where("More on Rome"), where("More on Oslo")], [[home], [away]]);

  // B's replica's KV cache nearly full while the others have room: B's next turn goes elsewhere.
  const full = fakes.find((f) => f.name === away)!;
  full.gauges.kv = 0.97;
  await waitFor("the full KV reading", () => replicasOf("vl").find((r) => r.name === away)!.signals!.kvUsage === 0.97);
  await ask([...b2, { role: "assistant", content: "ok" }, { role: "user", content: "More on Oslo" }, { role: "assistant", content: "ok" }, { role: "user", content: "Even more" }]);
  assert.notDeepEqual(where("Even more"), [away]);
  full.gauges.kv = 0.1;

  // vLLM without prompt-token details reports no cache figures: /v1/models says so once it has seen an answer.
  const listed = async () => ((await (await fetch(`${gateway.url}/v1/models`, { headers: gateway.localAuth })).json()) as { data: Array<{ id: string; cache_reporting?: string }> }).data;
  assert.equal((await listed()).find((m) => m.id === "single")!.cache_reporting, undefined, "not known before an answer");
  await client.chat.completions.create({ model: "single", messages: [{ role: "user", content: "Single" }] });
  const models = await listed();
  assert.equal(models.find((m) => m.id === "vl")!.cache_reporting, "none");
  assert.equal(models.find((m) => m.id === "single")!.cache_reporting, "none");
  const one = (await (await fetch(`${gateway.url}/v1/models/vl`, { headers: gateway.localAuth })).json()) as { cache_reporting?: string };
  assert.equal(one.cache_reporting, "none");
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  assert.match(metrics, /sputnik_replica_engine_kv_usage\{model="vl",replica="v0"\} /);
  assert.doesNotMatch(metrics, new RegExp(fakes[0]!.url.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")), "replica URLs stay out of /metrics");
});

test("a replica whose metrics stop answering keeps its last reading on show, with its age and the error", async () => {
  const fake = fakes[2]!;
  const before = replicasOf("vl").find((r) => r.name === fake.name)!.signals!;
  assert.equal(before.error, null);
  await fake.close();
  await waitFor("the read error", () => replicasOf("vl").find((r) => r.name === fake.name)!.signals!.error !== null);
  const after = replicasOf("vl").find((r) => r.name === fake.name)!.signals!;
  assert.equal(after.source, "vllm", "the last good reading is still shown");
  assert.ok(after.ageMs! >= before.ageMs!, "and ages (past metrics.maxAgeMs routing stops using it)");
});

test("the prefix index is shared through Redis: another gateway's state finds where a prompt's longest prefix went", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`;
  const connect = async () => {
    const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redis.on("error", () => undefined);
    await redis.connect();
    return redis;
  };
  const [one, two] = [await connect(), await connect()];
  const a = new RedisRoutingState(one, { prefix, leaseMs: 5000, prefixEntries: 6, prefixTtlMs: 60_000 });
  const b = new RedisRoutingState(two, { prefix, leaseMs: 5000, prefixEntries: 6, prefixTtlMs: 60_000 });
  try {
    const system: ChatMessage = { role: "system", content: "shared" };
    const rome: ChatMessage[] = [system, { role: "user", content: "Hello" }, { role: "assistant", content: "Hi" }, { role: "user", content: "Rome" }];
    const oslo: ChatMessage[] = [system, { role: "user", content: "Hello" }, { role: "assistant", content: "Hi" }, { role: "user", content: "Oslo" }];
    (await a.claim("m", null, "r0", 60_000, prefixHashes(rome, 16))).release();
    (await a.claim("m", null, "r1", 60_000, prefixHashes(oslo, 16))).release();
    const next = [...rome, { role: "assistant" as const, content: "Old" }, { role: "user" as const, content: "More" }];
    const read = await b.read("m", null, ["r0", "r1"], prefixHashes(next, 16));
    assert.deepEqual(read.prefix, { replica: "r0", rank: 2 }, "the longest match wins over the shared opening, last sent to r1");
    assert.equal((await b.read("m", null, ["r0"], prefixHashes([system, { role: "user", content: "Hi there" }], 16))).prefix, undefined, "the system prompt alone matches nothing");
    // Bounded: 6 entries; many more prompts push the oldest out, never past the bound.
    for (let i = 0; i < 10; i++) (await a.claim("m", null, "r2", 60_000, prefixHashes([{ role: "user", content: `q${i}` }], 16))).release();
    assert.equal(await one.zcard(`${prefix}{m}:pxlru`), 6);
    assert.equal(await one.hlen(`${prefix}{m}:px`), 6);
    assert.equal((await b.read("m", null, [], prefixHashes(next, 16))).prefix, undefined, "the least recently sent went first");
    assert.equal((await b.read("m", null, [], prefixHashes([{ role: "user", content: "q9" }], 16))).prefix?.replica, "r2");
  } finally {
    await a.close();
    await b.close();
    const keys = await one.keys(`${prefix}*`);
    if (keys.length > 0) await one.del(...keys);
    one.disconnect();
    two.disconnect();
  }
});

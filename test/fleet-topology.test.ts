/**
 * The scale-out topology end to end, on loopback with real processes: three Sputnik engine nodes
 * (`sputnik serve` processes, each serving the generated scripted models with real llama.cpp) and
 * two Sputnik gateways (`sputnik serve` processes too, so one can be killed) sharing one PostgreSQL
 * schema and one Redis (random key prefixes), each configured with fleet models whose replicas are
 * the three nodes (each node's local key as the replica key). Clients are billed users with API
 * keys, so what the ledger charges is money, not only counts.
 *
 * What it shows, each claim measured where it happens:
 * - affinity: a conversation's turns, sent alternately through both gateways, land on the node that
 *   holds it — every turn 2+ reuses exactly as many cached tokens as one node alone reports for the
 *   same conversation; with round_robin most turns do not;
 * - the cluster-wide cap holds at the engines: the nodes' own /metrics never show more requests
 *   (running + queued) than the fleet's capacity during a burst through both gateways;
 * - fairness across the two gateway processes: a heavy user's flood through one does not hold back
 *   a light user's request through the other beyond the places already running;
 * - a node killed with SIGKILL under steady load: no request that had not streamed a byte fails;
 *   those cut mid-stream end with an error event, are settled `failed` and charged exactly the
 *   output they delivered; the node is out of rotation (gateways' /health) within 3 s, and once
 *   restarted on its port it is back within one probe interval and takes traffic;
 * - a gateway killed with SIGKILL under load (last: it leaves one gateway): the other keeps serving
 *   every request, the dead one's admission places come back within the lease time
 *   (`limits.cluster.leaseMs`), and the nodes' own /metrics never show more than the capacity.
 *
 * Figures (times to leave and rejoin rotation, cache hits, peak concurrency) are printed as
 * diagnostics; asserts leave room for a loaded 2-core machine.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { createApiKey } from "../src/auth/apiKeys.ts";
import { readLocalKey } from "../src/auth/localMode.ts";
import { PasswordHasher } from "../src/auth/passwords.ts";
import { insertUser } from "../src/auth/users.ts";
import { addCredit } from "../src/billing/balances.ts";
import { savePlan } from "../src/billing/plans.ts";
import { savePriceSet } from "../src/billing/priceBook.ts";
import { costMicros } from "../src/billing/pricing.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { openDatabase, type Store } from "../src/store/database.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { openCompletion, type OpenCall } from "./support/loopbackClient.ts";
import { startServeProcess, type ServeProcess } from "./support/serveProcess.ts";
import { deleteRedisKeys, postgresReachable, redisReachable, servicesRequired, testPostgresUrl, testRedisUrl } from "./support/services.ts";
import { startTestService, type TestService } from "./support/service.ts";

interface Gateway {
  url: string;
  dataDir: string;
  process: ServeProcess;
}

// As `npm test` runs every test: GPU detection costs each node process seconds and buys nothing here.
process.env.SPUTNIK_GPU ??= "off";

const PRICES = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
const PROBE_INTERVAL_MS = 1000;
/** The gateways' admission leases (`limits.cluster`) and the fleet's in-flight leases. */
const LEASE_MS = 5000;
const POLL_MS = 250;
const SYSTEM = "You are a helpful assistant. Answer briefly and clearly.";
const NODE_LIMITS = { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, httpPerIpPerMinute: 0, maxConcurrentPerIp: 0 };

interface Node {
  name: string;
  dataDir: string;
  configFile: string;
  process: ServeProcess;
  url: string;
  key: string;
}

/** One node's config: what `sputnik serve` reads; `port` 0 the first time, its old port on a restart. */
async function writeNodeConfig(node: Pick<Node, "dataDir" | "configFile">, port: number): Promise<void> {
  await writeFile(
    node.configFile,
    JSON.stringify({
      host: "127.0.0.1",
      port,
      dataDir: node.dataDir,
      models: [await ensureModel("scripted"), await ensureModel("scripted-long")],
      threads: 1,
      parallel: 2,
      contextSize: 2048,
      pullDefaultModel: false,
      logLevel: "info", // startServeProcess reads the listening line
      // Every request from a gateway comes from one address as the node's local operator: the
      // per-IP limits meant for the public would throttle the fleet (see docs/deploy).
      limits: NODE_LIMITS,
    }),
  );
}

async function startNode(name: string): Promise<Node> {
  const dataDir = await mkdtemp(join(tmpdir(), `sputnik-${name}-`));
  const configFile = join(dataDir, "config.json");
  await writeNodeConfig({ dataDir, configFile }, 0);
  const process = await startServeProcess(configFile);
  const key = await readLocalKey(dataDir);
  assert.ok(key, `${name} wrote its local key`);
  return { name, dataDir, configFile, process, url: process.url, key };
}

/** The gauges a node reports for one of its models: requests running and queued there. */
async function nodeLoad(url: string, model: string): Promise<{ running: number; queued: number; answered: number; rereads: number; decoded: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const gauge = (name: string) => {
    let sum = 0;
    for (const match of text.matchAll(new RegExp(`^${name}\\{[^}]*model="${model}"[^}]*\\} (\\S+)$`, "gm"))) sum += Number(match[1]);
    return sum;
  };
  return {
    running: gauge("sputnik_active_sequences"),
    queued: gauge("sputnik_queue_length"),
    answered: gauge("sputnik_time_to_first_token_seconds_count"),
    rereads: gauge("sputnik_engine_rereads_total"),
    decoded: gauge("sputnik_engine_batch_tokens_total"),
  };
}

/**
 * Until every answer of `model` on these servers has been re-read into its sequence (the local
 * engine does it after the answer, in time no request needs): a next turn sent during a re-read
 * stops it, and its cache hit would then depend on timing. Bounded: a re-read that is never
 * counted shows up as a hit mismatch, not as a hang.
 */
async function rereadsSettled(urls: string[], model: string): Promise<void> {
  const deadline = performance.now() + 5000;
  for (const url of urls) {
    for (;;) {
      const load = await nodeLoad(url, model);
      if (load.rereads >= load.answered || performance.now() > deadline) break;
      await sleep(10);
    }
  }
}

type ReplicaHealth = { model: string; name: string; inRotation: boolean; breaker: string };

/** The replicas of a gateway's /health (public: names, never URLs). */
async function health(gateway: Pick<Gateway, "url">): Promise<ReplicaHealth[]> {
  const body = (await (await fetch(`${gateway.url}/health`)).json()) as { replicas?: ReplicaHealth[] };
  assert.ok(body.replicas && body.replicas.length > 0, `/health lists the replicas: ${JSON.stringify(body)}`);
  return body.replicas;
}

/** The victim's entries on every gateway (one per gateway for `model`). */
async function victimStates(gateways: Gateway[], model: string, name: string): Promise<ReplicaHealth[]> {
  const states = (await Promise.all(gateways.map(health))).flat().filter((r) => r.model === model && r.name === name);
  assert.equal(states.length, gateways.length);
  return states;
}

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, limitMs: number): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > limitMs) assert.fail(`not within ${limitMs} ms: ${what}`);
    await sleep(20);
  }
  return performance.now() - started;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A schema of its own in the test database, for both gateways. */
async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}



describe("scale-out topology: 3 engine nodes, 2 gateways, one PostgreSQL, one Redis", () => {
  const pgUrl = testPostgresUrl();
  const redisUrl = testRedisUrl();
  const schema = `test_${randomBytes(8).toString("hex")}`;
  const prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`;
  let skip: string | null = null;
  let nodes: Node[] = [];
  const gateways: Gateway[] = [];
  let reference: TestService | undefined;
  let store: Store | undefined;
  let apiKey = "";
  /** Two more users for the fairness test: one floods, one asks once. */
  let heavyKey = "";
  let lightKey = "";

  before(async () => {
    for (const [kind, url] of [["postgres", pgUrl], ["redis", redisUrl]] as const) {
      if (await (kind === "postgres" ? postgresReachable(url) : redisReachable(url))) continue;
      if (servicesRequired()) throw new Error(`${kind} not reachable at ${url} and SPUTNIK_REQUIRE_SERVICES=1`);
      skip = `${kind} not reachable at ${url}`;
      process.stderr.write(`!!! SKIPPED: ${skip} — the fleet topology tests did not run\n`);
      return;
    }
    const started = performance.now();
    // Both models exist before three processes look for them.
    await ensureModel("scripted");
    await ensureModel("scripted-long");
    nodes = await Promise.all(["node0", "node1", "node2"].map(startNode));
    const nodesUp = performance.now();

    // The user base, in the gateways' shared database: one billed user with credit and a key.
    store = await openDatabase({ url: pgUrl, schema, dataDir: tmpdir() });
    await savePlan(store.db, { id: "pro", name: "Pro", billed: true, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
    await savePriceSet(store.db, { model: "*", base: PRICES, windows: [] }, null);
    const passwordHash = await new PasswordHasher(TEST_PASSWORD_HASHING).hash(TEST_PASSWORD);
    const billedUser = async (username: string) => {
      const user = await insertUser(store!.db, { username, email: null, passwordHash, role: "user", status: "active", planId: "pro" });
      await addCredit(store!.db, { userId: user.id, kind: "topped_up", amountMicros: 1_000_000_000, source: "admin" });
      return (await createApiKey(store!.db, { userId: user.id, name: username, models: null, expiresAt: null })).key;
    };
    apiKey = await billedUser("fleet");
    heavyKey = await billedUser("heavy");
    lightKey = await billedUser("light");

    const replicas = (maxConcurrency: number) => nodes.map((n) => ({ baseUrl: `${n.url}/v1`, apiKey: n.key, name: n.name, maxConcurrency }));
    const fleet = { stateKeyPrefix: `${prefix}fleet:`, leaseMs: LEASE_MS, health: { probeIntervalMs: PROBE_INTERVAL_MS, probeTimeoutMs: 500 } };
    const config = {
      host: "127.0.0.1",
      port: 0,
      models: [],
      pullDefaultModel: false,
      logLevel: "info", // startServeProcess reads the listening line
      databaseUrl: pgUrl,
      database: { schema },
      redisUrl,
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      // A billed request without max_tokens gets this bound sent upstream (the gateway does not
      // know a remote context): it must fit the nodes' 2048-token context beside the prompt.
      billing: { defaultMaxOutputTokens: 1024 },
      limits: {
        redisKeyPrefix: `${prefix}rl:`,
        httpPerIpPerMinute: 0,
        maxConcurrentPerKey: 0,
        maxConcurrentPerIp: 0,
        perKey: { requestsPerMinute: 0, tokensPerMinute: 0 },
        perUser: { requestsPerMinute: 0, tokensPerMinute: 0 },
        queue: { maxLength: 1000, maxPerUser: 1000, maxWaitMs: 120_000, assumedServiceMs: 500, keepAliveMs: 1000 },
        cluster: { leaseMs: LEASE_MS, pollMs: POLL_MS },
      },
      remoteModels: [
        { ...fleet, id: "chat", upstreamModel: "scripted", replicas: replicas(2) },
        { ...fleet, id: "chat-rr", upstreamModel: "scripted", routing: "round_robin", replicas: replicas(2) },
        // One place per node: the fleet's capacity is 3, for both gateways together.
        { ...fleet, id: "capped", upstreamModel: "scripted-long", routing: "least_loaded", replicas: replicas(1) },
        { ...fleet, id: "long", upstreamModel: "scripted-long", failover: { minRetries: 20 }, replicas: replicas(2) },
      ],
    };
    // One after the other: both migrate the same schema at start.
    for (let i = 0; i < 2; i++) {
      const dataDir = await mkdtemp(join(tmpdir(), `sputnik-gateway${i}-`));
      const configFile = join(dataDir, "config.json");
      await writeFile(configFile, JSON.stringify({ ...config, dataDir }));
      const gateway = await startServeProcess(configFile);
      gateways.push({ url: gateway.url, dataDir, process: gateway });
    }
    // One node alone, configured as the fleet's nodes are: what a conversation's cache hits are without routing.
    reference = await startTestService({ models: ["scripted"], config: { limits: NODE_LIMITS } });
    await waitUntil("every replica probed up", async () => (await Promise.all(gateways.map(health))).flat().every((r) => r.inRotation), 10_000);
    process.stderr.write(`# topology up: nodes ${Math.round(nodesUp - started)} ms, gateways and reference ${Math.round(performance.now() - nodesUp)} ms\n`);
  });

  after(async () => {
    for (const g of gateways) {
      g.process.kill("SIGTERM");
      await g.process.exited;
      await rm(g.dataDir, { recursive: true, force: true });
    }
    await reference?.stop();
    for (const node of nodes) {
      node.process.kill("SIGKILL");
      await node.process.exited;
      await rm(node.dataDir, { recursive: true, force: true });
    }
    await store?.close();
    if (!skip) {
      await dropSchema(pgUrl, schema);
      await deleteRedisKeys(redisUrl, prefix);
    }
  });

  const auth = () => ({ "content-type": "application/json", authorization: `Bearer ${apiKey}` });

  async function ask(baseUrl: string, model: string, messages: Array<{ role: string; content: string }>, headers: Record<string, string>) {
    const response = await fetch(`${baseUrl}/v1/chat/completions`, { method: "POST", headers, body: JSON.stringify({ model, messages }) });
    const body = (await response.json()) as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number; prompt_cache_hit_tokens: number } };
    assert.equal(response.status, 200, JSON.stringify(body));
    return { content: body.choices[0]!.message.content, prompt: body.usage.prompt_tokens, hit: body.usage.prompt_cache_hit_tokens };
  }

  /**
   * Conversations of 5 turns, each turn through the other gateway than the last: one conversation
   * after the other (`sequential`), or turn 1 of every conversation, then turn 2, … (`interleaved`,
   * as many users at once). Then the same turns, conversation by conversation, straight to the
   * reference node: what one node alone reuses. Returns turn 2+ hits: [through the fleet, alone].
   */
  async function conversations(model: string, label: string, count: number, order: "sequential" | "interleaved"): Promise<Array<[number, number]>> {
    const urls = [...nodes.map((n) => n.url), reference!.url];
    const chats = Array.from({ length: count }, (_, c) => ({
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: `${label} conversation ${c}: what is ${c} plus ${c + 1}?` },
      ],
      sent: [] as Array<Array<{ role: string; content: string }>>,
      hits: [] as number[],
    }));
    const turn = async (c: number, n: number) => {
      const chat = chats[c]!;
      chat.sent.push([...chat.messages]);
      const reply = await ask(gateways[(n + c) % 2]!.url, model, chat.messages, auth());
      chat.hits.push(reply.hit);
      chat.messages.push({ role: "assistant", content: reply.content }, { role: "user", content: `Turn ${n + 1}: and then?` });
      await rereadsSettled(urls, "scripted");
    };
    if (order === "sequential") for (let c = 0; c < count; c++) for (let n = 1; n <= 5; n++) await turn(c, n);
    else for (let n = 1; n <= 5; n++) for (let c = 0; c < count; c++) await turn(c, n);
    const pairs: Array<[number, number]> = [];
    for (const chat of chats) {
      for (const [n, messages] of chat.sent.entries()) {
        const alone = await ask(reference!.url, "scripted", messages, { "content-type": "application/json", ...reference!.localAuth });
        await rereadsSettled([reference!.url], "scripted");
        if (n > 0) pairs.push([chat.hits[n]!, alone.hit]);
      }
    }
    return pairs;
  }

  test("affinity: turns sent alternately through both gateways reuse the node's cache as one node alone does; round_robin mostly does not", async (t) => {
    if (skip) return t.skip(skip);
    const affinity = await conversations("chat", "Affinity", 4, "sequential");
    t.diagnostic(`affinity turn 2+ hits (fleet, alone): ${JSON.stringify(affinity)}`);
    for (const [fleet, alone] of affinity) assert.ok(fleet > 0, "every turn 2+ reused the cache");
    assert.deepEqual(
      affinity.map(([fleet]) => fleet),
      affinity.map(([, alone]) => alone),
      "each turn reused exactly what one node alone reuses for the same conversation",
    );
    // Interleaved, as many users at once: one after the other, each gateway's turn counter would
    // advance only with this conversation's turns and could line its turns up on one node by
    // arithmetic (sequentially, 8 of these 16 turns did).
    const roundRobin = await conversations("chat-rr", "Round robin", 4, "interleaved");
    t.diagnostic(`round_robin turn 2+ hits (fleet, alone): ${JSON.stringify(roundRobin)}`);
    const equal = roundRobin.filter(([fleet, alone]) => fleet === alone).length;
    const sum = (pairs: Array<[number, number]>, i: 0 | 1) => pairs.reduce((s, p) => s + p[i], 0);
    t.diagnostic(
      `hit ratio vs one node alone: affinity ${(sum(affinity, 0) / sum(affinity, 1)).toFixed(3)}, round_robin ${(sum(roundRobin, 0) / sum(roundRobin, 1)).toFixed(3)}; ` +
        `round_robin turns with the full hit: ${equal}/${roundRobin.length}`,
    );
    assert.ok(equal * 2 < roundRobin.length, `with round_robin most turns miss their history (${equal}/${roundRobin.length} had it)`);
    assert.ok(sum(roundRobin, 0) < 0.75 * sum(roundRobin, 1), "and reuse clearly less of the cache");
  });

  test("a burst through both gateways never runs more than the fleet's capacity at the engine nodes", async (t) => {
    if (skip) return t.skip(skip);
    const capacity = 3;
    let sampling = true;
    let peak = 0;
    const perNodePeak = [0, 0, 0];
    let samples = 0;
    const sampler = (async () => {
      while (sampling) {
        const loads = await Promise.all(nodes.map((n) => nodeLoad(n.url, "scripted-long")));
        const held = loads.map((l) => l.running + l.queued);
        held.forEach((h, i) => (perNodePeak[i] = Math.max(perNodePeak[i]!, h)));
        peak = Math.max(peak, held.reduce((a, b) => a + b, 0));
        samples++;
        await sleep(5);
      }
    })();
    const calls: OpenCall[] = [];
    for (let i = 0; i < 14; i++) {
      const body = { model: "capped", stream: true, max_tokens: 120, messages: [{ role: "user", content: `Burst request ${i}` }] };
      calls.push(await openCompletion(gateways[i % 2]!.url, body, { headers: { authorization: `Bearer ${apiKey}` } }));
    }
    await Promise.all(calls.map((c) => c.finished));
    sampling = false;
    await sampler;
    for (const call of calls) {
      assert.equal(call.status, 200);
      assert.equal(call.data.at(-1), "[DONE]");
      assert.ok(!call.data.some((d) => d.startsWith('{"error"')), "no error event");
    }
    t.diagnostic(`${samples} samples of the nodes' /metrics: peak ${peak} requests at the engines together (capacity ${capacity}), per node ${perNodePeak}`);
    assert.ok(peak <= capacity, `at most ${capacity} requests at the engine nodes at once (saw ${peak})`);
    assert.ok(peak >= 2, "the burst did fill the fleet");
  });

  test("fairness across gateway processes: a heavy user's 30 requests through one do not hold back a light user's request through the other", async (t) => {
    if (skip) return t.skip(skip);
    const capacity = 3;
    await waitUntil("the nodes idle", async () => (await Promise.all(nodes.map((n) => nodeLoad(n.url, "scripted-long")))).every((l) => l.running + l.queued === 0), 10_000);
    const ask = (key: string, i: number) =>
      openCompletion(gateways[key === heavyKey ? 0 : 1]!.url, { model: "capped", stream: true, max_tokens: 40, messages: [{ role: "user", content: `Fair ${i}` }] }, { headers: { authorization: `Bearer ${key}` } });
    const heavy: OpenCall[] = [];
    try {
      // All at once: a running stream's headers come with its first token, a waiting one's at once.
      heavy.push(...(await Promise.all(Array.from({ length: 30 }, (_, i) => ask(heavyKey, i)))));
      // The flood is in line before the light request comes (its places are taken, the rest wait).
      await waitUntil("the heavy user holding every place", () => heavy.filter((h) => h.firstDataAt !== null).length >= capacity, 30_000);
      const light = await ask(lightKey, 0);
      // Its headers came back: it is in the cluster-wide line now (or running).
      const lightArrived = performance.now();
      await light.finished;
      assert.equal(light.status, 200);
      assert.equal(light.data.at(-1), "[DONE]");
      const lightStarted = light.firstDataAt!;
      // Heavy requests whose first byte came after the light one was in line and before its own:
      // with fair queueing across both gateways, at most the places already handed out by then
      // (granted, their first token still being computed).
      const overtaking = heavy.filter((h) => h.firstDataAt !== null && h.firstDataAt > lightArrived && h.firstDataAt < lightStarted);
      const waitingWhenLightCame = heavy.filter((h) => h.firstDataAt === null || h.firstDataAt > lightArrived).length;
      t.diagnostic(`light waited ${Math.round(lightStarted - lightArrived)} ms with ${waitingWhenLightCame} heavy requests waiting; ${overtaking.length} heavy requests went first`);
      assert.ok(waitingWhenLightCame >= 10, `the heavy backlog was there when the light request came (${waitingWhenLightCame} waiting)`);
      assert.ok(overtaking.length <= capacity, `${overtaking.length} heavy requests went first`);
      const positions = light.comments.filter((c) => c.startsWith("keep-alive queue_position="));
      assert.ok(
        positions.every((c) => c.startsWith("keep-alive queue_position=1 ")),
        `while it waited, the light request was first in the cluster-wide line: ${JSON.stringify(positions)}`,
      );
    } finally {
      for (const call of heavy) call.abort();
      await Promise.all(heavy.map((c) => c.finished));
    }
  });

  test("SIGKILL of a node under load: no request fails before its first byte, cut streams are billed what they delivered; the node leaves and rejoins rotation", async (t) => {
    if (skip) return t.skip(skip);
    const victim = nodes[1]!;
    const port = Number(new URL(victim.url).port);
    interface Outcome {
      status: number;
      deltas: number;
      error: boolean;
      done: boolean;
      /** The error event's message, if any. */
      why?: string;
    }
    const outcomes: Outcome[] = [];
    let running = true;
    let sent = 0;
    const worker = async (w: number) => {
      while (running) {
        const i = sent++;
        const body = { model: "long", stream: true, max_tokens: 160, messages: [{ role: "user", content: `Load ${w}, request ${i}: think it through.` }] };
        const call = await openCompletion(gateways[i % 2]!.url, body, { headers: { authorization: `Bearer ${apiKey}` } });
        await call.finished;
        const events = call.data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d) as { error?: { message?: string }; choices?: Array<{ delta?: { content?: string; reasoning_content?: string } }> });
        const deltas = events.filter((e) => e.choices?.[0]?.delta?.content || e.choices?.[0]?.delta?.reasoning_content).length;
        const failure = events.find((e) => e.error !== undefined)?.error;
        outcomes.push({ status: call.status, deltas, error: failure !== undefined, done: call.data.at(-1) === "[DONE]", ...(failure ? { why: failure.message ?? "" } : {}) });
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    try {
      await waitUntil("a steady load", () => outcomes.length >= 6, 30_000);
      // Killed while it streams, so that some requests are cut mid-answer.
      // Generating for a while (so its streams have sent bytes to the gateways) and still running.
      await waitUntil(
        "the victim streaming",
        async () => {
          const first = await nodeLoad(victim.url, "scripted-long");
          if (first.running === 0) return false;
          await sleep(100);
          const then = await nodeLoad(victim.url, "scripted-long");
          return then.running >= 1 && then.decoded - first.decoded >= 10;
        },
        10_000,
      );
      victim.process.kill("SIGKILL");
      const killedAt = performance.now();
      await victim.process.exited;
      await waitUntil(
        "the victim out of rotation on both gateways",
        async () => (await victimStates(gateways, "long", victim.name)).every((r) => !r.inRotation),
        3000 - (performance.now() - killedAt),
      );
      const outMs = performance.now() - killedAt;
      const failedAtKill = outcomes.length;
      await sleep(1500); // the load keeps going on two nodes

      await writeNodeConfig(victim, port);
      victim.process = await startServeProcess(victim.configFile);
      const backMs = await waitUntil(
        "the victim back in rotation on both gateways",
        async () => (await victimStates(gateways, "long", victim.name)).every((r) => r.inRotation),
        PROBE_INTERVAL_MS + 2000,
      );
      const tookTraffic = await waitUntil("the restarted node to answer requests", async () => (await nodeLoad(victim.url, "scripted-long")).answered > 0, 15_000);
      t.diagnostic(
        `victim out of rotation ${Math.round(outMs)} ms after SIGKILL; back ${Math.round(backMs)} ms after it listened again ` +
          `(probe interval ${PROBE_INTERVAL_MS} ms); first answer there ${Math.round(tookTraffic + backMs)} ms after listening; ${failedAtKill} requests done at the kill`,
      );
    } finally {
      running = false;
      await Promise.all(workers);
    }

    const beforeByte = outcomes.filter((o) => o.status !== 200 || (o.error && o.deltas === 0) || (!o.error && !o.done));
    const cut = outcomes.filter((o) => o.status === 200 && o.error && o.deltas > 0);
    const succeeded = outcomes.filter((o) => o.status === 200 && !o.error && o.done);
    t.diagnostic(`${outcomes.length} requests: ${succeeded.length} succeeded, ${cut.length} cut mid-stream, ${beforeByte.length} failed before a byte`);
    const lengths = new Map<number, number>();
    for (const o of succeeded) lengths.set(o.deltas, (lengths.get(o.deltas) ?? 0) + 1);
    t.diagnostic(`deltas of the successful answers (count: requests): ${JSON.stringify([...lengths])}`);
    assert.deepEqual(beforeByte, [], "every request that had not streamed a byte succeeded on another node");
    assert.ok(cut.length >= 1, "the kill cut at least one stream");
    for (const o of cut) assert.ok(o.done, "a cut stream still ends properly: the error event, then [DONE]");

    // The books: each cut request settled `failed`, charged exactly the output it delivered (the
    // node never reported its prompt, so none is billed), and the request log says so.
    const failed = await store!.db.selectFrom("usage_ledger").selectAll().where("model", "=", "long").where("status", "=", "failed").execute();
    assert.deepEqual(
      failed.map((r) => r.reasoning_tokens + r.answer_tokens).sort((a, b) => a - b),
      cut.map((o) => o.deltas).sort((a, b) => a - b),
      "one failed ledger row per cut stream, billing the deltas it delivered",
    );
    for (const row of failed) {
      assert.equal(row.cache_hit_tokens + row.cache_miss_tokens, 0);
      assert.equal(row.charged_micros, costMicros({ cacheHit: 0, cacheMiss: 0, output: row.reasoning_tokens + row.answer_tokens }, PRICES));
      assert.ok(row.charged_micros > 0);
    }
    const completed = await store!.db.selectFrom("usage_ledger").select((eb) => eb.fn.countAll<string>().as("n")).where("model", "=", "long").where("status", "=", "completed").executeTakeFirstOrThrow();
    assert.equal(Number(completed.n), succeeded.length, "every success settled as completed");
    const logged = await store!.db.selectFrom("request_log").select(["status", "completion_tokens"]).where("model", "=", "long").where("status", ">=", 500).execute();
    assert.equal(logged.length, cut.length, "the request log records each cut request as failed");
  });

  test("SIGKILL of a gateway under load: the other keeps serving, the dead one's places come back within the lease time, the nodes never run more than the capacity", async (t) => {
    if (skip) return t.skip(skip);
    const capacity = 3;
    const [victim, survivor] = [gateways[0]!, gateways[1]!];
    await waitUntil("the nodes idle", async () => (await Promise.all(nodes.map((n) => nodeLoad(n.url, "scripted-long")))).every((l) => l.running + l.queued === 0), 10_000);

    // What the engines run, sampled from their own /metrics the whole time.
    let sampling = true;
    let peak = 0;
    let samples = 0;
    const timeline: Array<[number, number]> = [];
    const sampler = (async () => {
      while (sampling) {
        const loads = await Promise.all(nodes.map((n) => nodeLoad(n.url, "scripted-long")));
        const held = loads.reduce((sum, l) => sum + l.running + l.queued, 0);
        peak = Math.max(peak, held);
        timeline.push([performance.now(), held]);
        samples++;
        await sleep(5);
      }
    })();

    interface Outcome {
      status: number;
      error: boolean;
      done: boolean;
    }
    const survived: Outcome[] = [];
    const onVictim: OpenCall[] = [];
    let running = true;
    let sent = 0;
    const body = () => ({ model: "capped", stream: true, max_tokens: 60, messages: [{ role: "user", content: `Gateway load ${sent++}: think it through.` }] });
    const headers = { authorization: `Bearer ${apiKey}` };
    // More demand than capacity on each gateway: the survivor always has requests waiting for places.
    const survivorWorker = async () => {
      while (running) {
        const call = await openCompletion(survivor.url, body(), { headers });
        await call.finished;
        survived.push({ status: call.status, error: call.data.some((d) => d.startsWith('{"error"')), done: call.data.at(-1) === "[DONE]" });
      }
    };
    const victimWorker = async () => {
      while (running && victim.process.alive()) {
        const call = await openCompletion(victim.url, body(), { headers }).catch(() => null);
        if (!call) return; // refused: it is dead
        onVictim.push(call);
        await call.finished;
      }
    };
    const workers = [...Array.from({ length: 4 }, survivorWorker), ...Array.from({ length: 3 }, victimWorker)];
    let killedAt = 0;
    let backMs = 0;
    let heldByVictim = 0;
    try {
      await waitUntil("a steady load through both gateways", () => survived.length >= 3 && onVictim.filter((c) => c.ended).length >= 2, 60_000);
      // Killed while it holds places: some of its requests are streaming from the nodes.
      await waitUntil("the victim streaming", () => onVictim.some((c) => !c.ended && c.data.length > 2), 20_000);
      heldByVictim = onVictim.filter((c) => !c.ended && c.firstDataAt !== null).length;
      victim.process.kill("SIGKILL");
      killedAt = performance.now();
      await victim.process.exited;
      // Its connections to the nodes closed with it, so the nodes stop its generations; its places
      // in Redis stay taken until their leases run out (nobody renews them). Then the survivor's
      // waiting requests fill the whole capacity again.
      backMs = await waitUntil(
        "the survivor's requests filling every place at the nodes",
        async () => {
          const loads = await Promise.all(nodes.map((n) => nodeLoad(n.url, "scripted-long")));
          return loads.reduce((sum, l) => sum + l.running, 0) >= capacity;
        },
        LEASE_MS + 2000,
      );
      await sleep(1000); // and keeps serving
    } finally {
      running = false;
      await Promise.all(workers);
      sampling = false;
      await sampler;
    }
    const afterKill = timeline.filter(([at]) => at > killedAt);
    const short = afterKill.filter(([at, held]) => held < capacity && at - killedAt < backMs);
    t.diagnostic(
      `victim held ${heldByVictim} streaming requests at the kill; the survivor filled all ${capacity} places again ${Math.round(backMs)} ms after it ` +
        `(lease ${LEASE_MS} ms, poll ${POLL_MS} ms); ${samples} samples of the nodes' /metrics, peak ${peak}, ${short.length} samples after the kill below capacity`,
    );
    t.diagnostic(`survivor: ${survived.length} requests, ${survived.filter((o) => o.status === 200 && !o.error && o.done).length} complete`);
    assert.ok(heldByVictim >= 1, "the victim held places when it died");
    assert.ok(peak <= capacity, `at most ${capacity} requests at the engine nodes at once, before and after the kill (saw ${peak})`);
    assert.ok(survived.length >= 3);
    for (const o of survived) assert.deepEqual(o, { status: 200, error: false, done: true }, "every request through the survivor completed");

    // No place leaks: once the survivor's requests end, the model's cluster-wide places and line are empty.
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const slots = `${prefix}rl:adm:{capped}:slots`;
      await waitUntil("every place given back", async () => (await redis.zcard(slots)) === 0, LEASE_MS + 2000);
      assert.equal(await redis.zcard(`${prefix}rl:adm:{capped}:queue`), 0, "nobody left in line");
    } finally {
      redis.disconnect();
    }
  });
});

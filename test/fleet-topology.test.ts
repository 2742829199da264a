/**
 * The scale-out topology end to end, on loopback with real processes: three Sputnik engine nodes
 * (`sputnik serve` processes, each serving the generated scripted models with real llama.cpp) and
 * two Sputnik gateways (in this process) sharing one PostgreSQL schema and one Redis (random key
 * prefixes), each configured with fleet models whose replicas are the three nodes (each node's
 * local key as the replica key). Clients are a billed user with an API key, so what the ledger
 * charges is money, not only counts.
 *
 * What it shows, each claim measured where it happens:
 * - affinity: a conversation's turns, sent alternately through both gateways, land on the node that
 *   holds it — every turn 2+ reuses exactly as many cached tokens as one node alone reports for the
 *   same conversation; with round_robin most turns do not;
 * - the cluster-wide cap holds at the engines: the nodes' own /metrics never show more requests
 *   (running + queued) than the fleet's capacity during a burst through both gateways;
 * - a node killed with SIGKILL under steady load: no request that had not streamed a byte fails;
 *   those cut mid-stream end with an error event, are settled `failed` and charged exactly the
 *   output they delivered; the node is out of rotation (gateways' /health) within 3 s, and once
 *   restarted on its port it is back within one probe interval and takes traffic.
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

// As `npm test` runs every test: GPU detection costs each node process seconds and buys nothing here.
process.env.SPUTNIK_GPU ??= "off";

const PRICES = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
const PROBE_INTERVAL_MS = 1000;
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
async function health(gateway: TestService): Promise<ReplicaHealth[]> {
  const body = (await (await fetch(`${gateway.url}/health`)).json()) as { replicas?: ReplicaHealth[] };
  assert.ok(body.replicas && body.replicas.length > 0, `/health lists the replicas: ${JSON.stringify(body)}`);
  return body.replicas;
}

/** The victim's entries on every gateway (one per gateway for `model`). */
async function victimStates(gateways: TestService[], model: string, name: string): Promise<ReplicaHealth[]> {
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
  let gateways: TestService[] = [];
  let reference: TestService | undefined;
  let store: Store | undefined;
  let apiKey = "";

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
    const user = await insertUser(store.db, { username: "fleet", email: null, passwordHash, role: "user", status: "active", planId: "pro" });
    apiKey = (await createApiKey(store.db, { userId: user.id, name: "fleet", models: null, expiresAt: null })).key;
    await addCredit(store.db, { userId: user.id, kind: "topped_up", amountMicros: 1_000_000_000, source: "admin" });

    const replicas = (maxConcurrency: number) => nodes.map((n) => ({ baseUrl: `${n.url}/v1`, apiKey: n.key, name: n.name, maxConcurrency }));
    const fleet = { stateKeyPrefix: `${prefix}fleet:`, health: { probeIntervalMs: PROBE_INTERVAL_MS, probeTimeoutMs: 500 } };
    const config = {
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
        cluster: { leaseMs: 5000, pollMs: 250 },
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
    for (let i = 0; i < 2; i++) gateways.push(await startTestService({ models: [], config, signupMode: null }));
    // One node alone, configured as the fleet's nodes are: what a conversation's cache hits are without routing.
    reference = await startTestService({ models: ["scripted"], config: { limits: NODE_LIMITS } });
    await waitUntil("every replica probed up", async () => (await Promise.all(gateways.map(health))).flat().every((r) => r.inRotation), 10_000);
    process.stderr.write(`# topology up: nodes ${Math.round(nodesUp - started)} ms, gateways and reference ${Math.round(performance.now() - nodesUp)} ms\n`);
  });

  after(async () => {
    for (const g of gateways) await g.stop().catch(() => undefined);
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

  test("SIGKILL of a node under load: no request fails before its first byte, cut streams are billed what they delivered; the node leaves and rejoins rotation", async (t) => {
    if (skip) return t.skip(skip);
    const victim = nodes[1]!;
    const port = Number(new URL(victim.url).port);
    interface Outcome {
      status: number;
      deltas: number;
      error: boolean;
      done: boolean;
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
        const events = call.data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d) as { error?: unknown; choices?: Array<{ delta?: { content?: string; reasoning_content?: string } }> });
        const deltas = events.filter((e) => e.choices?.[0]?.delta?.content || e.choices?.[0]?.delta?.reasoning_content).length;
        outcomes.push({ status: call.status, deltas, error: events.some((e) => e.error !== undefined), done: call.data.at(-1) === "[DONE]" });
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
});

/**
 * Cluster-wide admission against the real Redis: each "gateway" is a `Limits` with its own Redis
 * connections (the dead-holder test: a child process), all under one random key prefix per test.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { deleteRedisKeys, redisUrlOrSkip } from "../../test/support/services.ts";
import { ServiceError } from "../errors.ts";
import { limitsConfigSchema } from "./config.ts";
import type { Identity } from "./identity.ts";
import { Limits, type CompletionPass } from "./limits.ts";
import { RedisAdmission } from "./redisAdmission.ts";
import { MemoryBucketStore } from "./tokenBucket.ts";

const fromIp = (ip: string): Identity => ({ kind: "anonymous", userId: null, apiKeyId: null, planId: null, ip });
const user = (userId: string, apiKeyId: string | null = null): Identity => ({ kind: "user", userId, apiKeyId, planId: null, ip: "10.0.0.1" });
const noRates = { requestsPerMinute: 0, tokensPerMinute: 0 };

interface GatewayOptions {
  capacity: number;
  leaseMs?: number;
  pollMs?: number;
  limits?: Record<string, unknown>;
}

interface Gateway {
  limits: Limits;
  redis: Redis;
  close(): Promise<void>;
}

async function connect(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  await redis.connect();
  return redis;
}

/** One gateway: its own connection, the shared prefix, the same capacity as every other. */
async function gateway(url: string, prefix: string, options: GatewayOptions): Promise<Gateway> {
  const redis = await connect(url);
  const config = limitsConfigSchema.parse({
    perIp: noRates,
    perKey: noRates,
    perUser: noRates,
    maxConcurrentPerIp: 0,
    maxConcurrentPerKey: 0,
    queue: { maxLength: 200, maxPerUser: 200, maxWaitMs: 600_000, assumedServiceMs: 1000, keepAliveMs: 60_000 },
    ...options.limits,
  });
  const limits = new Limits({
    config,
    store: new MemoryBucketStore(),
    capacityOf: (model) => (model === "m" ? options.capacity : undefined),
    admission: (context, memory) =>
      new RedisAdmission(redis, context, memory, { prefix, leaseMs: options.leaseMs ?? 10_000, pollMs: options.pollMs ?? 200 }),
  });
  return {
    limits,
    redis,
    close: async () => {
      await limits.close();
      redis.disconnect();
    },
  };
}

/** A fresh prefix per test, and every key under it deleted afterwards. */
async function freshPrefix(t: TestContext, url: string): Promise<string> {
  const prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`;
  t.after(() => deleteRedisKeys(url, prefix));
  return prefix;
}

const key = (prefix: string, name: string) => `${prefix}adm:{m}:${name}`;

async function eventually(what: string, check: () => boolean | Promise<boolean>, limitMs = 10_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`${what}: not within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const settled = (pass: CompletionPass) =>
  Promise.race([pass.ready.then(() => "ready", () => "rejected"), new Promise((r) => setTimeout(() => r("pending"), 50))]);

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof ServiceError, `expected a refusal, got ${String(error)}`);
  return error;
}

test("two gateways admitting at once never run more than the capacity together", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const a = await gateway(url, prefix, { capacity: 3 });
  const b = await gateway(url, prefix, { capacity: 3 });
  t.after(() => Promise.all([a.close(), b.close()]));
  // Counted where the work happens, by the holders themselves.
  let running = 0;
  let most = 0;
  const one = async (limits: Limits, i: number) => {
    const pass = await limits.admitCompletion({ identity: fromIp(`10.0.${i % 7}.1`), model: "m" });
    await pass.ready;
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 5 + ((i * 7) % 25)));
    running--;
    pass.finish();
  };
  await Promise.all(Array.from({ length: 40 }, (_, i) => one(i % 2 === 0 ? a.limits : b.limits, i)));
  assert.ok(most <= 3, `at most the capacity ran at once (${most})`);
  assert.equal(most, 3, "and the capacity was used");
  assert.equal(await a.redis.zcard(key(prefix, "slots")), 0, "every place was given back");
  assert.equal(await a.redis.zcard(key(prefix, "queue")), 0);
});

test("a held place outlives its lease while renewed, and comes back after the lease once renewals stop", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const leaseMs = 1000;
  const a = await gateway(url, prefix, { capacity: 1, leaseMs, pollMs: 200 });
  const b = await gateway(url, prefix, { capacity: 1, leaseMs, pollMs: 200 });
  t.after(() => Promise.all([a.close(), b.close()]));
  const held = await a.limits.admitCompletion({ identity: fromIp("10.0.0.1"), model: "m" });
  assert.equal(held.queued, false);
  const waiting = await b.limits.admitCompletion({ identity: fromIp("10.0.0.2"), model: "m" });
  assert.equal(waiting.queued, true);
  await new Promise((resolve) => setTimeout(resolve, 2.5 * leaseMs));
  assert.equal(await settled(waiting), "pending", "a renewed lease does not run out");
  // The holder goes silent (its connection gone: no renewal, no release).
  a.redis.disconnect();
  const silentAt = performance.now();
  await waiting.ready;
  const tookMs = performance.now() - silentAt;
  assert.ok(tookMs >= leaseMs / 2, `given back by expiry, not by a release (${Math.round(tookMs)} ms)`);
  waiting.finish();
  await eventually("no place is left held", async () => (await b.redis.zcard(key(prefix, "slots"))) === 0);
});

test("a gateway killed with SIGKILL gives its places back within the lease; none leaks", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const leaseMs = 1500;
  // The child: a gateway holding both places of the model, until it is killed.
  const here = (name: string) => JSON.stringify(fileURLToPath(new URL(name, import.meta.url)));
  const code = `
    import { Redis } from "ioredis";
    import { Limits } from ${here("./limits.ts")};
    import { limitsConfigSchema } from ${here("./config.ts")};
    import { RedisAdmission } from ${here("./redisAdmission.ts")};
    import { MemoryBucketStore } from ${here("./tokenBucket.ts")};
    const redis = new Redis(${JSON.stringify(url)});
    const limits = new Limits({
      config: limitsConfigSchema.parse({ perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, maxConcurrentPerIp: 0 }),
      store: new MemoryBucketStore(),
      capacityOf: () => 2,
      admission: (context, memory) => new RedisAdmission(redis, context, memory, { prefix: ${JSON.stringify(prefix)}, leaseMs: ${leaseMs}, pollMs: 200 }),
    });
    const id = { kind: "anonymous", userId: null, apiKeyId: null, planId: null, ip: "10.9.9.9" };
    await (await limits.admitCompletion({ identity: id, model: "m" })).ready;
    await (await limits.admitCompletion({ identity: id, model: "m" })).ready;
    process.stdout.write("held\\n");
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("held")) resolve();
    });
    child.once("exit", (status) => reject(new Error(`the child exited (${status}) before holding its places`)));
  });
  const a = await gateway(url, prefix, { capacity: 2, leaseMs, pollMs: 200 });
  t.after(() => a.close());
  const first = await a.limits.admitCompletion({ identity: fromIp("10.0.0.1"), model: "m" });
  const second = await a.limits.admitCompletion({ identity: fromIp("10.0.0.2"), model: "m" });
  assert.equal(first.queued, true, "the child holds the capacity");
  assert.equal(second.queued, true);
  await new Promise((resolve) => setTimeout(resolve, 2 * leaseMs));
  assert.equal(await settled(first), "pending", "the live child keeps its places beyond one lease");
  assert.ok(child.kill("SIGKILL"));
  const killedAt = performance.now();
  await Promise.all([first.ready, second.ready]);
  const tookMs = performance.now() - killedAt;
  assert.ok(tookMs < leaseMs + 5000, `both places back after the lease (${Math.round(tookMs)} ms)`);
  // Granted waiters keep their members ("<seq>|<flow>"): the two places are now ours, and only those.
  const holders = (await a.redis.zrange(key(prefix, "slots"), "0", "-1")).map((m) => m.slice(17)).sort();
  assert.deepEqual(holders, ["ip:10.0.0.1", "ip:10.0.0.2"]);
  first.finish();
  second.finish();
  await eventually("no place leaks", async () => (await a.redis.zcard(key(prefix, "slots"))) === 0);
});

test("a place handed to a dead gateway's waiter is back within that waiter's lease, not a fresh one", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const leaseMs = 2000;
  const [a, dead, b] = await Promise.all([0, 1, 2].map(() => gateway(url, prefix, { capacity: 1, leaseMs, pollMs: 200 })));
  t.after(() => Promise.all([a!.close(), dead!.close(), b!.close()]));
  const held = await a!.limits.admitCompletion({ identity: fromIp("10.0.0.1"), model: "m" });
  assert.equal(held.queued, false);
  const first = await dead!.limits.admitCompletion({ identity: fromIp("10.0.0.2"), model: "m" });
  const second = await b!.limits.admitCompletion({ identity: fromIp("10.0.0.3"), model: "m" });
  assert.equal(first.queued, true);
  assert.equal(second.queued, true);
  // The first waiter's gateway dies (no renewal, no leave); most of a lease later the place is
  // freed and handed to that waiter, whose lease has little left to run.
  dead!.redis.disconnect();
  const diedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 0.8 * leaseMs));
  held.finish();
  await second.ready;
  const tookMs = performance.now() - diedAt;
  t.diagnostic(`the next waiter ran ${Math.round(tookMs)} ms after the first waiter's gateway died (lease ${leaseMs} ms)`);
  assert.ok(tookMs < leaseMs + 1000, `back within the dead waiter's own lease (${Math.round(tookMs)} ms), not a lease after the hand-over`);
  second.finish();
  await eventually("no place leaks", async () => (await b!.redis.zcard(key(prefix, "slots"))) === 0);
});

test("fairness across gateways: a light user on B goes right after the current request, ahead of 50 heavy ones on A", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  // A long poll: every handoff below goes by pub/sub, at once.
  const a = await gateway(url, prefix, { capacity: 1, pollMs: 3000, leaseMs: 30_000 });
  const b = await gateway(url, prefix, { capacity: 1, pollMs: 3000, leaseMs: 30_000 });
  t.after(() => Promise.all([a.close(), b.close()]));
  const order: string[] = [];
  let running = await a.limits.admitCompletion({ identity: user("heavy"), model: "m" });
  assert.equal(running.queued, false);
  const passes = new Map<string, CompletionPass>();
  for (let i = 0; i < 50; i++) passes.set(`heavy${i}`, await a.limits.admitCompletion({ identity: user("heavy"), model: "m" }));
  const light = await b.limits.admitCompletion({ identity: user("light"), model: "m" });
  passes.set("light", light);
  for (const [name, pass] of passes) pass.ready.then(() => order.push(name), () => undefined);
  // Positions are cluster-wide: B's light request is first among all 51 waiting.
  assert.deepEqual(light.position(), { position: 1, queueLength: 51, estimatedWaitS: 1 });
  for (let turn = 0; turn < 3; turn++) {
    running.finish();
    await eventually(`turn ${turn} handed over`, () => order.length === turn + 1, 5000);
    running = passes.get(order.at(-1)!)!;
  }
  assert.deepEqual(order, ["light", "heavy0", "heavy1"]);
  // A's waiters hear their place among every gateway's waiters at the next poll.
  const last = passes.get("heavy49")!;
  await eventually("the last heavy request's place refreshed", () => last.position()?.position === 48, 8000);
  assert.equal(last.position()!.queueLength, 48);
  running.finish();
  for (const pass of passes.values()) pass.finish();
  await eventually("the line is empty", async () => (await a.redis.zcard(key(prefix, "queue"))) === 0);
});

test("a waiter whose client leaves is out of the shared line at once, and the next one moves up", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const a = await gateway(url, prefix, { capacity: 1, pollMs: 5000, leaseMs: 30_000 });
  const b = await gateway(url, prefix, { capacity: 1, pollMs: 5000, leaseMs: 30_000 });
  t.after(() => Promise.all([a.close(), b.close()]));
  const running = await a.limits.admitCompletion({ identity: fromIp("10.0.0.1"), model: "m" });
  const abort = new AbortController();
  const leaving = await b.limits.admitCompletion({ identity: fromIp("10.0.0.2"), model: "m", signal: abort.signal });
  const staying = await a.limits.admitCompletion({ identity: fromIp("10.0.0.3"), model: "m" });
  assert.equal(staying.position()!.position, 2);
  assert.equal(await a.redis.zcard(key(prefix, "queue")), 2);
  const leftAt = performance.now();
  abort.abort(new Error("client left"));
  await assert.rejects(leaving.ready, /client left/);
  await eventually("the shared line lost it", async () => (await a.redis.zcard(key(prefix, "queue"))) === 1, 2000);
  assert.ok(performance.now() - leftAt < 2000, "well before any poll (5 s)");
  running.finish();
  await staying.ready;
  assert.deepEqual(b.limits.load().map((l) => [l.queued, l.running]), [[0, 0]]);
  staying.finish();
  leaving.finish();
});

test("the queue's length bound and the per-IP and per-key caps hold across gateways", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const limits = { maxConcurrentPerIp: 2, maxConcurrentPerKey: 1, queue: { maxLength: 2, maxPerUser: 200, maxWaitMs: 600_000, assumedServiceMs: 1000, keepAliveMs: 60_000 } };
  const a = await gateway(url, prefix, { capacity: 1, limits });
  const b = await gateway(url, prefix, { capacity: 1, limits });
  t.after(() => Promise.all([a.close(), b.close()]));

  // Per IP: two open from one address on A; a third on B is refused; one finishing frees it.
  const one = await a.limits.admitCompletion({ identity: fromIp("10.1.1.1"), model: "m" });
  const two = await a.limits.admitCompletion({ identity: fromIp("10.1.1.1"), model: "m" });
  const ipRefused = await refusal(b.limits.admitCompletion({ identity: fromIp("10.1.1.1"), model: "m" }));
  assert.equal(ipRefused.kind, "rate_limited");
  assert.equal(ipRefused.code, "concurrency_ip");
  assert.ok(Number(ipRefused.retryAfterS) >= 1);

  // The line's length: one waits from A (`two`), one from B; a third anywhere is 503 queue_full.
  const fromB = await b.limits.admitCompletion({ identity: fromIp("10.2.2.2"), model: "m" });
  assert.equal(fromB.queued, true);
  const full = await refusal(a.limits.admitCompletion({ identity: fromIp("10.3.3.3"), model: "m" }));
  assert.equal(full.kind, "unavailable");
  assert.equal(full.code, "queue_full");
  assert.match(full.message, /2 requests are waiting/);

  two.finish();
  // finish() gives places back without waiting for Redis: the next admission may race it.
  let three: CompletionPass | null = null;
  await eventually("the address's place is back", async () => {
    three = await b.limits.admitCompletion({ identity: fromIp("10.1.1.1"), model: "m" }).catch(() => null);
    return three !== null;
  });
  assert.equal(three!.queued, true, "and it waits in line behind B's request");

  // Per key: one open per key, whichever gateway it reaches.
  one.finish();
  fromB.finish();
  three!.finish();
  const keyed = await a.limits.admitCompletion({ identity: user("u1", "k1"), model: "m" });
  const keyRefused = await refusal(b.limits.admitCompletion({ identity: user("u1", "k1"), model: "m" }));
  assert.equal(keyRefused.code, "concurrency_key");
  keyed.finish();
  await eventually("the key's place is back", async () => {
    const pass = await b.limits.admitCompletion({ identity: user("u1", "k1"), model: "m" }).catch(() => null);
    pass?.finish();
    return pass !== null;
  });
});

test("draining refuses the gateway's waiters with 503 and takes them out of the shared line", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const a = await gateway(url, prefix, { capacity: 1 });
  const b = await gateway(url, prefix, { capacity: 1 });
  t.after(() => Promise.all([a.close(), b.close()]));
  const running = await a.limits.admitCompletion({ identity: fromIp("10.0.0.1"), model: "m" });
  const waiting = await b.limits.admitCompletion({ identity: fromIp("10.0.0.2"), model: "m" });
  b.limits.drain();
  const error = await waiting.ready.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof ServiceError && error.code === "shutting_down");
  await eventually("the line is empty", async () => (await a.redis.zcard(key(prefix, "queue"))) === 0, 2000);
  assert.equal((await refusal(b.limits.admitCompletion({ identity: fromIp("10.0.0.3"), model: "m" }))).code, "shutting_down");
  running.finish();
  waiting.finish();
});

test("the shared order across gateways is the in-memory fair queue's order, plan weights included", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = await freshPrefix(t, url);
  const weightOf = (planId: string | null) => (planId === "pro" ? 2 : 1);
  const who = (name: string, planId: string | null): Identity => ({ kind: "user", userId: name, apiKeyId: null, planId, ip: "10.0.0.1" });
  // Arrivals: [gateway, user, plan]; the first runs at once, the rest wait.
  const arrivals: Array<[0 | 1, string, string | null]> = [[0, "x", null]];
  for (let i = 0; i < 6; i++) arrivals.push([0, "w1", null], [1, "w2", "pro"], [i % 2 === 0 ? 1 : 0, "w3", null]);

  async function order(gateways: Limits[]): Promise<string[]> {
    const admitted: string[] = [];
    const passes: CompletionPass[] = [];
    for (const [g, name, plan] of arrivals) {
      const pass = await gateways[g]!.admitCompletion({ identity: who(name, plan), model: "m" });
      pass.ready.then(() => admitted.push(name), () => undefined);
      passes.push(pass);
    }
    await eventually("the first runs", () => admitted.length === 1);
    for (let turn = 1; turn < arrivals.length; turn++) {
      passes[passes.findIndex((p, i) => i === indexOfNth(admitted, turn - 1))]!.finish();
      await eventually(`turn ${turn}`, () => admitted.length === turn + 1, 5000);
    }
    for (const pass of passes) pass.finish();
    return admitted;

    // The arrival index of the request admitted n-th (requests of one user run in arrival order).
    function indexOfNth(names: string[], n: number): number {
      const name = names[n]!;
      const nthOfUser = names.slice(0, n + 1).filter((x) => x === name).length;
      let seen = 0;
      return arrivals.findIndex(([, user]) => user === name && ++seen === nthOfUser);
    }
  }

  const config = limitsConfigSchema.parse({ perIp: noRates, perKey: noRates, perUser: noRates, maxConcurrentPerIp: 0, queue: { maxWaitMs: 600_000, assumedServiceMs: 1000 } });
  const memory = new Limits({ config, store: new MemoryBucketStore(), capacityOf: () => 1, weightOf });
  const expected = await order([memory, memory]);
  await memory.close();

  const gateways = await Promise.all([0, 1].map(async () => {
    const redis = await connect(url);
    const limits = new Limits({
      config,
      store: new MemoryBucketStore(),
      capacityOf: () => 1,
      weightOf,
      admission: (context, fallback) => new RedisAdmission(redis, context, fallback, { prefix, leaseMs: 30_000, pollMs: 3000 }),
    });
    return { limits, redis };
  }));
  t.after(async () => {
    for (const g of gateways) {
      await g.limits.close();
      g.redis.disconnect();
    }
  });
  const shared = await order(gateways.map((g) => g.limits));
  assert.deepEqual(shared, expected);
  // The pro user (weight 2) got two turns for each of the others' in the contended part.
  const contended = shared.slice(1, 13);
  assert.equal(contended.filter((n) => n === "w2").length, 6, contended.join(","));
});

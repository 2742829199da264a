/**
 * The fleet's routing state shared through Redis: two RedisRoutingStates (as two gateways) agree on
 * a key's replica and on in-flight loads, and a gateway that dies stops counting once its leases
 * run out; then two real gateways sharing Redis send each conversation's turns, alternately
 * through both, to one replica (real Sputnik services as replicas).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { RedisRoutingState } from "../src/engines/fleet/routingState.ts";
import { redisUrlOrSkip } from "./support/services.ts";
import { startTestService, type TestService } from "./support/service.ts";

async function connect(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined);
  await redis.connect();
  return redis;
}

async function cleanup(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}

test("two routing states sharing Redis agree on a key's replica and on in-flight loads; a dead one's leases expire", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`;
  const [one, two] = [await connect(url), await connect(url)];
  const a = new RedisRoutingState(one, { prefix, leaseMs: 1000 });
  const b = new RedisRoutingState(two, { prefix, leaseMs: 1000 });
  const replicas = ["http://r0/v1", "http://r1/v1"];
  try {
    assert.deepEqual(await b.read("m", "conv", replicas), { remembered: null, loads: [0, 0] });
    const lease = await a.claim("m", "conv", "http://r1/v1", 60_000);
    assert.deepEqual(await b.read("m", "conv", replicas), { remembered: "http://r1/v1", loads: [0, 1] }, "b sees a's choice and its lease");
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual((await b.read("m", "conv", replicas)).loads, [0, 1], "a live gateway renews its lease");
    lease.release();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual((await b.read("m", null, replicas)).loads, [0, 0]);

    // A gateway that dies holding a lease (simulated: its renewals stop, nothing is released).
    await b.claim("m", null, "http://r0/v1", 60_000);
    clearInterval((b as unknown as { renewer: NodeJS.Timeout }).renewer);
    assert.deepEqual((await a.read("m", null, replicas)).loads, [1, 0]);
    const started = Date.now();
    while ((await a.read("m", null, replicas)).loads[0] !== 0) {
      assert.ok(Date.now() - started < 3000, "the dead gateway's lease expired within its lease time");
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await a.close();
    await b.close();
    await cleanup(one, prefix);
    one.disconnect();
    two.disconnect();
  }
});

const services: TestService[] = [];
after(async () => {
  for (const s of services.reverse()) await s.stop();
});

test("two gateways sharing Redis route a conversation's turns, sent through either, to the same replica", async (t) => {
  const url = await redisUrlOrSkip(t);
  if (!url) return;
  const prefix = `sputnik-test:${randomBytes(6).toString("hex")}:`;
  const nodes: TestService[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startTestService({ models: ["scripted"] }));
  services.push(...nodes);
  const fleet = {
    id: "shared",
    upstreamModel: "scripted",
    stateKeyPrefix: prefix,
    replicas: nodes.map((n) => ({ baseUrl: `${n.url}/v1`, apiKey: n.localKey! })),
  };
  const gateways: TestService[] = [];
  for (let i = 0; i < 2; i++) {
    gateways.push(await startTestService({ models: [], config: { redisUrl: url, limits: { redisKeyPrefix: `${prefix}rl:` }, remoteModels: [fleet] } }));
  }
  services.push(...gateways);
  const clients = gateways.map((g) => new OpenAI({ baseURL: `${g.url}/v1`, apiKey: g.localKey!, maxRetries: 0 }));
  const perReplica = () => {
    const totals = [0, 0, 0];
    for (const g of gateways) g.router.stats()[0]!.replicas!.forEach((r, i) => (totals[i]! += r.requests));
    return totals;
  };
  const redis = await connect(url);
  try {
    for (let c = 0; c < 4; c++) {
      const messages: OpenAI.ChatCompletionMessageParam[] = [
        { role: "system", content: "You are a helpful assistant." },
        { role: "user", content: `Conversation ${c}` },
      ];
      const landed = new Set<number>();
      for (let turn = 0; turn < 3; turn++) {
        const before = perReplica();
        const reply = await clients[turn % 2]!.chat.completions.create({ model: "shared", messages });
        landed.add(perReplica().findIndex((n, i) => n > before[i]!));
        messages.push({ role: "assistant", content: reply.choices[0]!.message.content! }, { role: "user", content: `Turn ${turn + 1}` });
        if (turn > 0) {
          const usage = reply.usage as unknown as { prompt_cache_hit_tokens: number };
          assert.ok(usage.prompt_cache_hit_tokens > 0, `turn ${turn + 1} through gateway ${turn % 2} reused the cache`);
        }
      }
      assert.equal(landed.size, 1, `conversation ${c}: every turn on one replica`);
    }
    const remembered = await redis.keys(`${prefix}{shared}:aff:*`);
    assert.equal(remembered.length, 4, "one shared affinity entry per conversation");
  } finally {
    await cleanup(redis, prefix);
    redis.disconnect();
  }
});

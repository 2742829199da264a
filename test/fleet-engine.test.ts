/**
 * The fleet engine through a real gateway: real Sputnik services (the scripted model, in local
 * single-user mode, their local keys as replica keys) as replicas, and tiny in-test HTTP servers
 * where a failure mode must be forced. Those imitate failing upstreams: one that answers 503, one
 * that resets the connection, one that never sends headers, one that breaks off mid-answer. Their
 * /v1/models answers 200, as a half-broken engine's often does, so only real requests find them out.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import type { ReplicaState } from "../src/engines/types.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

type Mode = "ok" | "503" | "reset" | "hang" | "cut";

/** An imitation of a failing upstream; `mode` can change while it runs. */
async function fakeUpstream(mode: Mode): Promise<{ url: string; mode: Mode; posts: number; close(): Promise<void> }> {
  const sockets = new Set<import("node:net").Socket>();
  const fake = {
    url: "",
    mode,
    posts: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }));
      return;
    }
    fake.posts++;
    req.resume();
    switch (fake.mode) {
      case "503":
        res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "overloaded" } }));
        return;
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return; // never answers: the gateway's headers timeout must fire
      case "cut": {
        // Three deltas reach the client, then the connection drops before the end of the answer.
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta: object) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
        res.write(chunk({ reasoning_content: "Thinking" }) + chunk({ content: "Partial" }) + chunk({ content: " answer" }));
        setTimeout(() => req.socket.destroy(), 50);
        return;
      }
      case "ok":
        res.writeHead(500).end();
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return fake;
}

let nodes: TestService[];
let victim: TestService;
let gateway: TestService;
let client: OpenAI;
const fakes: Record<"unavailable" | "reset" | "hang" | "flip", Awaited<ReturnType<typeof fakeUpstream>>> = {} as never;

const replica = (node: TestService) => ({ baseUrl: `${node.url}/v1`, apiKey: node.localKey!, maxConcurrency: 4 });

before(async () => {
  nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startTestService({ models: ["scripted"] }));
  victim = await startTestService({ models: ["scripted"] });
  fakes.unavailable = await fakeUpstream("503");
  fakes.reset = await fakeUpstream("reset");
  fakes.hang = await fakeUpstream("hang");
  fakes.flip = await fakeUpstream("503");
  const fast = { probeIntervalMs: 300, probeTimeoutMs: 500, headersTimeoutMs: 1000 };
  gateway = await startTestService({
    models: [],
    config: {
      remoteModels: [
        { id: "aff", upstreamModel: "scripted", replicas: nodes.map(replica) },
        { id: "rr", upstreamModel: "scripted", routing: "round_robin", replicas: nodes.map(replica) },
        {
          id: "failover",
          upstreamModel: "scripted",
          routing: "round_robin",
          // Breakers out of the way: this model shows failover alone.
          health: { ...fast, failureThreshold: 1000 },
          failover: { maxAttempts: 4, minRetries: 1000 },
          replicas: [{ baseUrl: fakes.reset.url }, { baseUrl: fakes.hang.url }, { baseUrl: fakes.unavailable.url }, replica(nodes[0]!)],
        },
        {
          id: "breaker",
          upstreamModel: "scripted",
          routing: "round_robin",
          health: { ...fast, failureThreshold: 3, cooldownMs: 1000 },
          failover: { minRetries: 1000 },
          replicas: [{ baseUrl: fakes.flip.url, name: "flaky" }, replica(nodes[1]!)],
        },
        {
          id: "dead",
          upstreamModel: "scripted",
          routing: "round_robin",
          health: { ...fast, probeIntervalMs: 500 },
          replicas: [{ ...replica(victim), name: "victim" }, replica(nodes[2]!)],
        },
      ],
    },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.localKey!, maxRetries: 0 });
});

after(async () => {
  await gateway?.stop();
  for (const node of [...(nodes ?? []), victim]) await node?.stop();
  for (const fake of Object.values(fakes)) await fake.close();
});

function replicasOf(model: string): ReplicaState[] {
  return gateway.router.stats().find((a) => a.model === model)!.replicas!;
}

function requestsPerReplica(model: string): number[] {
  return replicasOf(model).map((r) => r.requests);
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return performance.now() - started;
}

function diff(after: number[], before: number[]): number[] {
  return after.map((n, i) => n - before[i]!);
}

test("affinity: each conversation's turns go to one replica, and turn 2 reuses its prompt cache", async () => {
  const conversations = Array.from({ length: 10 }, (_, i) => `Question number ${i}`).map((q) => [
    { role: "system" as const, content: "You are a helpful assistant." },
    { role: "user" as const, content: q },
  ]);
  const used = new Set<number>();
  for (const messages of conversations) {
    const before = requestsPerReplica("aff");
    const first = await client.chat.completions.create({ model: "aff", messages });
    const afterFirst = requestsPerReplica("aff");
    const second = await client.chat.completions.create({
      model: "aff",
      messages: [...messages, { role: "assistant", content: first.choices[0]!.message.content! }, { role: "user", content: "Tell me more." }],
    });
    const turn1 = diff(afterFirst, before);
    const turn2 = diff(requestsPerReplica("aff"), afterFirst);
    assert.deepEqual(turn2, turn1, "turn 2 on the replica of turn 1");
    used.add(turn1.indexOf(1));
    const usage = second.usage as unknown as { prompt_cache_hit_tokens: number; prompt_tokens: number };
    assert.ok(usage.prompt_cache_hit_tokens > 0, `turn 2 hit ${usage.prompt_cache_hit_tokens} of ${usage.prompt_tokens} prompt tokens`);
  }
  // Ten conversations on one of three replicas by chance: (1/3)^9.
  assert.ok(used.size >= 2, "conversations sharing a system prompt are not all on one replica");
});

test("round_robin spreads requests over every replica", async () => {
  const before = requestsPerReplica("rr");
  for (let i = 0; i < 6; i++) await client.chat.completions.create({ model: "rr", messages: [{ role: "user", content: "Same question" }] });
  assert.deepEqual(diff(requestsPerReplica("rr"), before), [2, 2, 2]);
});

test("a 4xx from a replica is the client's: answered as is, not retried elsewhere", async () => {
  const before = requestsPerReplica("aff");
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...gateway.localAuth },
    body: JSON.stringify({ model: "aff", messages: [{ role: "user", content: "x ".repeat(5000) }] }),
  });
  assert.equal(response.status, 400);
  assert.match(((await response.json()) as { error: { message: string } }).error.message, /maximum context length/);
  assert.equal(diff(requestsPerReplica("aff"), before).reduce((a, b) => a + b, 0), 1, "one replica tried");
  assert.ok(replicasOf("aff").every((r) => r.breaker === "closed" && r.consecutiveFailures === 0));
});

test("failover before the first byte: reset, no headers and 503 replicas are skipped, every request succeeds", async () => {
  const before = requestsPerReplica("failover");
  for (let i = 0; i < 4; i++) {
    const stream = await client.chat.completions.create({ model: "failover", messages: [{ role: "user", content: `Hi ${i}` }], stream: true });
    let content = "";
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? "";
    assert.ok(content.length > 0);
  }
  const tried = diff(requestsPerReplica("failover"), before);
  assert.equal(tried[3], 4, "every request ended on the healthy replica");
  assert.ok(tried[0]! + tried[1]! + tried[2]! >= 3, `failing replicas were tried first: ${tried}`);
  const states = replicasOf("failover");
  assert.ok(states.slice(0, 3).every((r) => r.failures > 0));
  assert.equal(states[3]!.failures, 0);
});

test("the breaker opens after N failures, the replica leaves rotation, and a probe brings it back after the cool-down", async () => {
  const flaky = () => replicasOf("breaker")[0]!;
  for (let i = 0; flaky().breaker === "closed"; i++) {
    assert.ok(i < 20, "the breaker opened");
    const r = await client.chat.completions.create({ model: "breaker", messages: [{ role: "user", content: `Hi ${i}` }] });
    assert.ok(r.choices[0]!.message.content);
  }
  assert.equal(flaky().failures, 3, "opened after failureThreshold consecutive failures");
  assert.equal(flaky().inRotation, false);
  const posts = fakes.flip.posts;
  for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: "breaker", messages: [{ role: "user", content: "Hi" }] });
  assert.equal(fakes.flip.posts, posts, "no request reaches a replica whose breaker is open");
  // Its /v1/models answers all along: once the cool-down ends, the half-open probe closes the breaker.
  await waitFor("the breaker to close", () => flaky().breaker === "closed" && flaky().inRotation);
  const health = (await (await fetch(`${gateway.url}/health`)).json()) as { replicas: Array<{ model: string; name: string; breaker: string }> };
  assert.ok(health.replicas.some((r) => r.model === "breaker" && r.name === "flaky" && r.breaker === "closed"));
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  assert.match(metrics, /sputnik_replica_breaker_state\{model="breaker",replica="flaky",state="closed"\} 1/);
  assert.match(metrics, /sputnik_replica_failures_total\{model="breaker",replica="flaky"\} 3/);
  assert.doesNotMatch(metrics, new RegExp(fakes.flip.url.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")), "replica URLs stay out of /metrics");
});

test("a replica that dies leaves rotation within 3 s and is back within one probe interval of its return", async () => {
  const server = victim.app.server;
  const port = (server.address() as AddressInfo).port;
  // The node's listener goes away (connections refused), as when its process dies.
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const sentAt = performance.now();
  for (let i = 0; i < 2; i++) {
    const r = await client.chat.completions.create({ model: "dead", messages: [{ role: "user", content: `Hi ${i}` }] });
    assert.ok(r.choices[0]!.message.content, "requests fail over to the live replica");
  }
  await waitFor("the victim to leave rotation", () => !replicasOf("dead")[0]!.inRotation, 3000);
  const outAfter = performance.now() - sentAt;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
  const back = await waitFor("the victim to come back", () => replicasOf("dead")[0]!.inRotation, 5000);
  console.log(`victim out of rotation ${Math.round(outAfter)} ms after its failures, back ${Math.round(back)} ms after it listened again (probe interval 500 ms)`);
  const before = requestsPerReplica("dead");
  for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: "dead", messages: [{ role: "user", content: "Hi" }] });
  assert.ok(diff(requestsPerReplica("dead"), before)[0]! > 0, "it takes traffic again");
});

test("mid-stream failure: the API stream ends with an error event; the web app stores the partial answer as an error and bills what was delivered", async () => {
  const cut = await fakeUpstream("cut");
  const web = await startTestService({
    models: [],
    config: { auth: { passwordHashing: TEST_PASSWORD_HASHING }, remoteModels: [{ id: "cut", replicas: [{ baseUrl: cut.url }, { baseUrl: cut.url.replace("/v1", "/other/v1") }] }] },
  });
  try {
    const direct = await fetch(`${web.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...web.localAuth },
      body: JSON.stringify({ model: "cut", stream: true, messages: [{ role: "user", content: "Hi" }] }),
    });
    assert.equal(direct.status, 200);
    const text = await direct.text();
    assert.match(text, /Partial/);
    assert.match(text, /"error":\{[^}]*"message":"Upstream stream broke/);
    assert.equal(cut.posts, 1, "what already streamed is never retried");

    const alice = new AppClient(web.url);
    assert.equal((await alice.post("/api/auth/signup", { username: "alice", password: TEST_PASSWORD })).status, 201);
    const conversation = (await alice.post("/api/conversations", { model: "cut" })).body;
    const sent = await alice.post(`/api/conversations/${conversation.id}/messages`, { content: "Hi", parent_id: null, model: "cut" });
    assert.match(sent.text, /"type":"error"/);
    const messages = (await alice.get(`/api/conversations/${conversation.id}`)).body.messages as Array<{ role: string; status: string; content: string; reasoning: string }>;
    const answer = messages.find((m) => m.role === "assistant")!;
    assert.deepEqual([answer.status, answer.content, answer.reasoning], ["error", "Partial answer", "Thinking"]);
    const rows = await web.store.db.selectFrom("usage_ledger").selectAll().orderBy("started_at").execute();
    const last = rows.at(-1)!;
    assert.deepEqual(
      [last.status, last.reasoning_tokens, last.answer_tokens, last.cache_hit_tokens + last.cache_miss_tokens],
      ["failed", 1, 2, 0],
      "the three delivered deltas are billed as output; the prompt the upstream never reported is not",
    );
  } finally {
    await web.stop();
    await cut.close();
  }
});

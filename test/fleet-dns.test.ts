/**
 * A fleet model whose replicas come from a DNS name re-resolved every interval (a Kubernetes
 * headless service listing engine pods): the resolver is injected, so the test says what the name
 * resolves to; the "pods" are tiny OpenAI-compatible imitations, one per loopback address
 * (127.0.0.2–4, all on one port, as pods behind one service are), each answering with its address.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { fleetModelSchema, remoteModelEntrySchema } from "../src/engines/fleet/config.ts";
import { FleetEngine } from "../src/engines/fleet/fleetEngine.ts";

const ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
const servers: http.Server[] = [];
let port = 0;
let answer: string[] | Error = ["127.0.0.2", "127.0.0.3"];
let resolutions = 0;
let engine: FleetEngine;

/** One imitation pod on `address`: GET /v1/models is up, a completion streams its own address. */
function pod(address: string, listenPort: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }));
      return;
    }
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (body: object) => `data: ${JSON.stringify(body)}\n\n`;
      res.end(
        chunk({ choices: [{ index: 0, delta: { content: address }, finish_reason: null }] }) +
          chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } }) +
          "data: [DONE]\n\n",
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPort, address, () => resolve(server));
  });
}

before(async () => {
  // The first pod picks a free port; the others take the same one on their own address.
  servers.push(await pod(ADDRESSES[0]!, 0));
  port = (servers[0]!.address() as AddressInfo).port;
  for (const address of ADDRESSES.slice(1)) servers.push(await pod(address, port));
  const config = fleetModelSchema.parse({
    id: "pods",
    routing: "round_robin",
    dns: { name: "engine.pods.svc", port, intervalMs: 1000, maxConcurrency: 3 },
    health: { probeIntervalMs: 200, probeTimeoutMs: 500 },
  });
  engine = new FleetEngine([config], {
    resolve: async (name) => {
      assert.equal(name, "engine.pods.svc");
      resolutions++;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  await engine.ready();
});

after(async () => {
  await engine?.close();
  for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
});

function replicas() {
  return engine.stats().find((a) => a.model === "pods")!.replicas!;
}

async function waitFor(what: string, check: () => boolean, limitMs = 5000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!check()) {
    if (performance.now() > deadline) assert.fail(`not within ${limitMs} ms: ${what}; replicas ${JSON.stringify(replicas())}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function answeredBy(count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    let text = "";
    for await (const event of engine.generate({ model: "pods", messages: [{ role: "user", content: `request ${i}` }] })) {
      if (event.type === "content") text += event.text;
    }
    seen.push(text);
  }
  return [...new Set(seen)].sort();
}

const names = () => replicas().map((r) => r.name).sort();

test("the replicas are the addresses the name resolves to, one per address on the configured port, named by name@address", async () => {
  assert.deepEqual(names(), ["engine.pods.svc@127.0.0.2", "engine.pods.svc@127.0.0.3"], "the first answer is in place once the engine is ready");
  await waitFor("both probed up", () => replicas().every((r) => r.inRotation));
  assert.deepEqual(await answeredBy(4), ["127.0.0.2", "127.0.0.3"]);
  assert.equal(engine.capacity("pods"), 6, "capacity is the resolved replicas' maxConcurrency together");
});

test("a new answer replaces the replicas: a pod that left gets no more traffic, a new one is probed and takes it, one that stayed keeps its state", async () => {
  const before = replicas().find((r) => r.name.endsWith("127.0.0.3"))!.requests;
  assert.ok(before > 0);
  answer = ["127.0.0.4", "127.0.0.3"];
  await waitFor("the new answer applied", () => names().join() === "engine.pods.svc@127.0.0.3,engine.pods.svc@127.0.0.4");
  await waitFor("the new pod probed up", () => replicas().every((r) => r.inRotation));
  assert.deepEqual(await answeredBy(4), ["127.0.0.3", "127.0.0.4"]);
  assert.ok(replicas().find((r) => r.name.endsWith("127.0.0.3"))!.requests > before, "the pod that stayed kept its counts");
});

test("a failed or empty answer keeps the last replicas", async () => {
  for (const bad of [new Error("SERVFAIL"), []]) {
    answer = bad;
    const seen = resolutions;
    await waitFor("another resolution", () => resolutions > seen + 1, 5000);
    assert.deepEqual(names(), ["engine.pods.svc@127.0.0.3", "engine.pods.svc@127.0.0.4"]);
    assert.deepEqual(await answeredBy(2), ["127.0.0.3", "127.0.0.4"]);
  }
});

test("config: a fleet model needs replicas or a dns name; a dns-only entry of remoteModels is a fleet model", () => {
  assert.equal(fleetModelSchema.safeParse({ id: "none" }).success, false);
  assert.equal(fleetModelSchema.safeParse({ id: "none", replicas: [] }).success, false);
  const parsed = remoteModelEntrySchema.parse({ id: "dns-only", dns: { name: "vllm.default.svc", port: 8000 } });
  assert.ok("replicas" in parsed && parsed.replicas.length === 0 && parsed.dns?.basePath === "/v1");
  assert.equal(fleetModelSchema.safeParse({ id: "bad", dns: { name: "x", port: 8000, basePath: "v1" } }).success, false, "basePath starts with /");
});

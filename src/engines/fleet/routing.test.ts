import assert from "node:assert/strict";
import { test } from "node:test";
import { ReplicaHealth } from "./replicaHealth.ts";
import { RetryBudget } from "./retryBudget.ts";
import { affinityKey, chooseReplica, prefixHashes, type Candidate } from "./routing.ts";
import { MemoryRoutingState } from "./routingState.ts";

const replicas = (loads: number[], maxConcurrency = 8): Candidate[] => loads.map((load, i) => ({ id: `http://r${i}/v1`, weight: 1, maxConcurrency, load }));
const bound = { loadFactor: 1.5, loadSlack: 2 };

test("an API conversation keeps one key across turns; users sharing a system prompt get different keys", () => {
  const system = { role: "system" as const, content: "You are a helpful assistant." };
  const turn1 = [system, { role: "user" as const, content: "Tell me about Rome" }];
  const turn2 = [...turn1, { role: "assistant" as const, content: "Rome is…" }, { role: "user" as const, content: "And Paris?" }];
  assert.equal(affinityKey({ messages: turn1 }), affinityKey({ messages: turn2 }));
  assert.notEqual(affinityKey({ messages: turn1 }), affinityKey({ messages: [system, { role: "user", content: "Tell me about Oslo" }] }));
  assert.equal(affinityKey({ messages: turn1, routingKey: "conv-1" }), affinityKey({ messages: turn2, routingKey: "conv-1" }));
  assert.notEqual(affinityKey({ messages: turn1, routingKey: "conv-1" }), affinityKey({ messages: turn1 }));
});

test("affinity hashing spreads many conversations with one system prompt over every replica", () => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const key = affinityKey({ messages: [{ role: "system", content: "shared" }, { role: "user", content: `question ${i}` }] });
    const choice = chooseReplica("affinity", replicas([0, 0, 0]), { key, remembered: null, turn: i, ...bound })!;
    counts.set(choice.candidate.id, (counts.get(choice.candidate.id) ?? 0) + 1);
  }
  assert.equal(counts.size, 3);
  for (const n of counts.values()) assert.ok(n > 120 && n < 280, `share ${n} of 600`);
});

test("affinity keeps a remembered replica until it is over its bound, then hashes, then takes the least loaded", () => {
  const key = "p:some-key";
  const first = chooseReplica("affinity", replicas([0, 0, 0]), { key, remembered: null, turn: 0, ...bound })!;
  assert.equal(first.reason, "hash");
  const kept = chooseReplica("affinity", replicas([0, 0, 0]), { key, remembered: "http://r2/v1", turn: 0, ...bound })!;
  assert.deepEqual([kept.candidate.id, kept.reason], ["http://r2/v1", "affinity"]);
  // r2 far above the mean (9 of 11 in flight, bound 1.5 × 12/3 + 2 = 8): it is left for another replica.
  const moved = chooseReplica("affinity", replicas([1, 1, 9], 100), { key, remembered: "http://r2/v1", turn: 0, ...bound })!;
  assert.notEqual(moved.candidate.id, "http://r2/v1");
  // Every replica full: least loaded.
  const full = chooseReplica("affinity", replicas([3, 1, 2], 1), { key, remembered: null, turn: 0, ...bound })!;
  assert.deepEqual([full.candidate.id, full.reason], ["http://r1/v1", "least_loaded"]);
});

test("round_robin takes turns; least_loaded takes the least busy per unit of weight", () => {
  const ids = [0, 1, 2, 3, 4, 5].map((turn) => chooseReplica("round_robin", replicas([5, 0, 0]), { key: "", remembered: null, turn, ...bound })!.candidate.id);
  assert.deepEqual(ids, ["http://r0/v1", "http://r1/v1", "http://r2/v1", "http://r0/v1", "http://r1/v1", "http://r2/v1"]);
  const weighted: Candidate[] = [
    { id: "a", weight: 1, maxConcurrency: 8, load: 2 },
    { id: "b", weight: 4, maxConcurrency: 32, load: 4 },
  ];
  assert.equal(chooseReplica("least_loaded", weighted, { key: "", remembered: null, turn: 0, ...bound })!.candidate.id, "b");
  assert.equal(chooseReplica("least_loaded", [], { key: "", remembered: null, turn: 0, ...bound }), null);
});

test("the breaker opens after N consecutive failures, half-opens after the cool-down, and a probe closes or reopens it", () => {
  let now = 0;
  const health = new ReplicaHealth({ failureThreshold: 3, cooldownMs: 1000 }, () => now);
  health.recordFailure("503");
  health.recordFailure("503");
  health.recordSuccess();
  health.recordFailure("503");
  health.recordFailure("503");
  assert.equal(health.breaker, "closed", "a success in between resets the count");
  health.recordFailure("503");
  assert.deepEqual([health.breaker, health.inRotation()], ["open", false]);
  health.recordProbe(true, "200");
  assert.equal(health.breaker, "open", "no probe closes it before the cool-down");
  now = 1000;
  assert.equal(health.breaker, "half_open");
  health.recordProbe(false, "refused");
  assert.deepEqual([health.breaker, health.probe], ["open", "down"], "a failed half-open probe opens it again");
  now = 2000;
  health.recordProbe(true, "200");
  assert.deepEqual([health.breaker, health.inRotation(), health.consecutiveFailures], ["closed", true, 0]);
  health.recordProbe(false, "refused");
  assert.equal(health.inRotation(), false, "a failed probe takes it out at once");
  health.recordProbe(true, "200");
  assert.equal(health.inRotation(), true, "and a passing one brings it back");
});

test("the retry budget allows minRetries plus a share of the requests in its window", () => {
  let now = 0;
  const budget = new RetryBudget({ ratio: 0.2, minRetries: 1, windowMs: 10_000 }, () => now);
  for (let i = 0; i < 10; i++) budget.request();
  assert.deepEqual([budget.tryRetry(), budget.tryRetry(), budget.tryRetry(), budget.tryRetry()], [true, true, true, false]);
  now = 11_000;
  assert.equal(budget.tryRetry(), true, "the window moved on");
});

test("prefix hashes: one per boundary from the first user message on, longest first; the next turn repeats them all", () => {
  const system = { role: "system" as const, content: "You are a helpful assistant." };
  assert.deepEqual(prefixHashes([system], 16), [], "a system prompt alone is never indexed");
  const turn1 = [system, { role: "user" as const, content: "Tell me about Rome" }];
  const turn2 = [...turn1, { role: "assistant" as const, content: "Rome is…" }, { role: "user" as const, content: "And Paris?" }];
  const [h1, h2] = [prefixHashes(turn1, 16), prefixHashes(turn2, 16)];
  assert.equal(h1.length, 1);
  assert.equal(h2.length, 3);
  assert.equal(h2[2], h1[0], "turn 2's shortest boundary is turn 1's whole prompt");
  assert.deepEqual(prefixHashes(turn2, 2), h2.slice(0, 2), "depth keeps the longest");
  const other = prefixHashes([system, { role: "user", content: "Tell me about Oslo" }], 16);
  assert.ok(!h2.includes(other[0]!), "another first question shares no indexed boundary");
});

test("the prefix index: a prompt goes to the replica last sent its longest prefix, even when its leading-messages key was since sent elsewhere", async () => {
  const state = new MemoryRoutingState(Date.now, { prefixEntries: 100 });
  const ids = replicas([0, 0, 0]).map((c) => c.id);
  const system = { role: "system" as const, content: "shared" };
  const opening = [system, { role: "user" as const, content: "Hello" }, { role: "assistant" as const, content: "Hi! How can I help?" }];
  // Two API conversations with one opening (one key), each continued on its own replica.
  const a = [...opening, { role: "user" as const, content: "About Rome" }];
  const b = [...opening, { role: "user" as const, content: "About Oslo" }];
  const key = affinityKey({ messages: a });
  assert.equal(key, affinityKey({ messages: b }));
  (await state.claim("m", key, ids[0]!, 60_000, prefixHashes(a, 16))).release();
  (await state.claim("m", key, ids[1]!, 60_000, prefixHashes(b, 16))).release();
  const nextA = [...a, { role: "assistant" as const, content: "Rome is old." }, { role: "user" as const, content: "More" }];
  const read = await state.read("m", key, ids, prefixHashes(nextA, 16));
  assert.equal(read.remembered, ids[1], "the key remembers the last conversation sent");
  assert.deepEqual(read.prefix, { replica: ids[0], rank: 2 }, "the index knows where A's prompt went");
  const choice = chooseReplica("affinity", replicas([0, 0, 0]), { key, remembered: read.remembered, prefix: read.prefix!.replica, turn: 0, ...bound })!;
  assert.deepEqual([choice.candidate.id, choice.reason], [ids[0], "prefix"]);
  // A caller's own conversation id outranks the index.
  const explicit = chooseReplica("affinity", replicas([0, 0, 0]), { key, remembered: ids[1]!, prefix: ids[0]!, explicitKey: true, turn: 0, ...bound })!;
  assert.deepEqual([explicit.candidate.id, explicit.reason], [ids[1], "affinity"]);
  // A new user with the shared system prompt only matches nothing.
  assert.equal((await state.read("m", null, ids, prefixHashes([system, { role: "user", content: "Bonjour" }], 16))).prefix, undefined);
  // Over its bound, the prefix's replica is left like a remembered one.
  const busy = chooseReplica("affinity", replicas([9, 1, 1], 100), { key, remembered: null, prefix: ids[0]!, turn: 0, ...bound })!;
  assert.notEqual(busy.candidate.id, ids[0]);
});

test("the prefix index is LRU-bounded and forgets entries after their TTL", async () => {
  let now = 0;
  const state = new MemoryRoutingState(() => now, { prefixEntries: 4 });
  const conversation = (i: number) => [{ role: "user" as const, content: `question ${i}` }];
  for (let i = 0; i < 6; i++) (await state.claim("m", null, `r${i}`, 1000, prefixHashes(conversation(i), 4))).release();
  const found = async (i: number) => (await state.read("m", null, [], prefixHashes(conversation(i), 4))).prefix?.replica;
  assert.equal(await found(0), undefined, "the least recently sent went first");
  assert.equal(await found(1), undefined);
  assert.equal(await found(5), "r5");
  now = 1001;
  assert.equal(await found(5), undefined, "expired");
});

test("a replica whose KV cache is over the limit is passed over while another has room; when all are full none is", () => {
  const kv = (usages: Array<number | null>): Candidate[] => usages.map((kvUsage, i) => ({ id: `r${i}`, weight: 1, maxConcurrency: 8, load: i, kvUsage }));
  assert.equal(chooseReplica("least_loaded", kv([0.99, 0.5, null]), { key: "", remembered: null, turn: 0, ...bound, maxKvUsage: 0.95 })!.candidate.id, "r1");
  const kept = chooseReplica("affinity", kv([0.99, 0.5, 0.2]), { key: "k", remembered: "r0", turn: 0, ...bound, maxKvUsage: 0.95 })!;
  assert.notEqual(kept.candidate.id, "r0", "not even for its own conversation");
  assert.equal(chooseReplica("least_loaded", kv([0.99, 0.97]), { key: "", remembered: null, turn: 0, ...bound, maxKvUsage: 0.95 })!.candidate.id, "r0");
  assert.equal(chooseReplica("round_robin", kv([0.99, 0.5]), { key: "", remembered: null, turn: 0, ...bound, maxKvUsage: 0.95 })!.candidate.id, "r0", "round_robin stays a plain baseline");
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { limitsConfigSchema } from "./config.ts";
import type { Identity } from "./identity.ts";
import { Limits, type LimitsDeps } from "./limits.ts";
import { MemoryBucketStore } from "./tokenBucket.ts";

const fromIp = (ip: string): Identity => ({ kind: "anonymous", userId: null, apiKeyId: null, planId: null, ip });
const withKey = (userId: string, apiKeyId: string, planId: string | null = null): Identity => ({ kind: "user", userId, apiKeyId, planId, ip: "10.0.0.9" });

function build(config: Record<string, unknown>, deps: Partial<LimitsDeps> = {}) {
  const rejected: string[] = [];
  const limits = new Limits({
    config: limitsConfigSchema.parse(config),
    store: new MemoryBucketStore(),
    capacityOf: (model) => (model === "m" ? 1 : undefined),
    observer: { rejected: (reason) => rejected.push(reason), queueWait: () => undefined },
    ...deps,
  });
  return { limits, rejected };
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof ServiceError, `expected a refusal, got ${String(error)}`);
  return error;
}

const quiet = { perIp: { requestsPerMinute: 0, tokensPerMinute: 0 }, perKey: { requestsPerMinute: 0, tokensPerMinute: 0 }, perUser: { requestsPerMinute: 0, tokensPerMinute: 0 } };

test("a completion runs at once when its model has room, and waits in line when not", async () => {
  const { limits } = build({ ...quiet, maxConcurrentPerIp: 0 });
  const first = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  assert.equal(first.queued, false);
  const second = await limits.admitCompletion({ identity: fromIp("2.2.2.2"), model: "m" });
  assert.equal(second.queued, true);
  assert.deepEqual(second.position(), { position: 1, queueLength: 1, estimatedWaitS: 10 });
  first.finish({ completed: true });
  await second.ready;
  assert.equal(second.position(), null);
  const [running] = limits.load();
  assert.deepEqual([running!.model, running!.queued, running!.running, running!.capacity], ["m", 0, 1, 1]);
  second.finish();
  second.finish(); // idempotent
  const [load] = limits.load();
  assert.deepEqual([load!.queued, load!.running], [0, 0]);
  assert.ok(load!.turnEstimateMs < 10_000, "the estimate now rests on a measured run");
  await limits.close();
});

test("an unknown model is not queued: the router answers 404 for it", async () => {
  const { limits } = build(quiet);
  const pass = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "nope" });
  assert.equal(pass.queued, false);
  await pass.ready;
  assert.deepEqual(limits.load(), []);
  await limits.close();
});

test("open completions are capped per IP and per API key (429), and a finished one frees its place", async () => {
  const { limits, rejected } = build({ ...quiet, maxConcurrentPerIp: 2, maxConcurrentPerKey: 1 });
  const a = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  const b = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  const ipError = await refusal(limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" }));
  assert.equal(ipError.kind, "rate_limited");
  assert.equal(ipError.code, "concurrency_ip");
  assert.match(ipError.message, /limit 2/);
  assert.ok(Number(ipError.retryAfterS) >= 1);
  b.finish({ completed: false });
  const c = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  a.finish();
  c.finish();

  const k = await limits.admitCompletion({ identity: withKey("u1", "k1"), model: "m" });
  const keyError = await refusal(limits.admitCompletion({ identity: withKey("u1", "k1"), model: "m" }));
  assert.equal(keyError.code, "concurrency_key");
  const other = await limits.admitCompletion({ identity: withKey("u1", "k2"), model: "m" });
  k.finish();
  other.finish();
  assert.deepEqual(rejected, ["concurrency_ip", "concurrency_key"]);
  await limits.close();
});

test("a request the queue refuses gives its concurrency place back", async () => {
  const { limits } = build({ ...quiet, maxConcurrentPerIp: 2, queue: { maxLength: 0 } });
  const running = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  const full = await refusal(limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" }));
  assert.equal(full.kind, "unavailable");
  assert.equal(full.code, "queue_full");
  assert.equal(limits.caps.count("ip:1.1.1.1"), 1);
  running.finish();
  await limits.close();
});

test("finish() charges the completion's tokens to its token buckets", async () => {
  const { limits } = build({ ...quiet, perIp: { requestsPerMinute: 0, tokensPerMinute: 100 }, maxConcurrentPerIp: 0 });
  const pass = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  pass.finish({ totalTokens: 150 });
  await new Promise((resolve) => setImmediate(resolve)); // the charge is not awaited by finish()
  const error = await refusal(limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" }));
  assert.equal(error.code, "rate_limit_tokens");
  await limits.close();
});

test("attack mode tightens the limits in force", async () => {
  let attack = false;
  const { limits } = build({ ...quiet, authPerIpPerMinute: 8 }, { attackMode: async () => attack });
  assert.equal((await limits.inForce()).authPerIpPerMinute, 8);
  attack = true;
  await new Promise((resolve) => setTimeout(resolve, 1100)); // the switch is read at most once a second
  assert.equal(await limits.isAttackMode(), true);
  await limits.consumeIp("auth-ip", "3.3.3.3");
  await limits.consumeIp("auth-ip", "3.3.3.3");
  const error = await refusal(limits.consumeIp("auth-ip", "3.3.3.3"));
  assert.match(error.message, /2 per minute/);
  await limits.close();
});

test("a plan's weight gives its users more turns; an unreadable weight counts as 1", async () => {
  const asked: Array<string | null> = [];
  const { limits } = build(
    { ...quiet, maxConcurrentPerIp: 0, maxConcurrentPerKey: 0 },
    {
      weightOf: async (planId) => {
        asked.push(planId);
        if (planId === "broken") throw new Error("no such table");
        return planId === "pro" ? 2 : 1;
      },
    },
  );
  const running = await limits.admitCompletion({ identity: fromIp("9.9.9.9"), model: "m" });
  const started: Array<{ user: string; finish(): void }> = [];
  for (const [user, plan] of [["free", "free"], ["free", "free"], ["pro", "pro"], ["pro", "pro"], ["pro", "pro"], ["odd", "broken"]] as const) {
    const pass = await limits.admitCompletion({ identity: withKey(user, `${user}-key`, plan), model: "m" });
    pass.ready.then(() => started.push({ user, finish: () => pass.finish() }), () => undefined);
  }
  running.finish();
  // One place: each request runs alone, in the queue's order, until it finishes.
  for (let i = 0; i < 6; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    started[i]!.finish();
  }
  assert.deepEqual(
    started.map((s) => s.user),
    ["free", "pro", "odd", "pro", "free", "pro"],
  );
  assert.deepEqual(asked.sort(), ["broken", "free", null, "pro"], "each plan's weight is read once, then cached");
  await limits.close();
});

test("drain() refuses waiting and new completions with 503", async () => {
  const { limits } = build({ ...quiet, maxConcurrentPerIp: 0 });
  const running = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  const waiting = await limits.admitCompletion({ identity: fromIp("2.2.2.2"), model: "m" });
  limits.drain();
  assert.equal((await refusal(waiting.ready)).code, "shutting_down");
  assert.equal((await refusal(limits.admitCompletion({ identity: fromIp("3.3.3.3"), model: "m" }))).code, "shutting_down");
  running.finish();
  await limits.close();
});

test("checkMessages names the limit and the message over it", () => {
  const { limits, rejected } = build({ maxMessages: 2, maxMessageChars: 5 });
  limits.checkMessages([{ content: "hello" }, { content: null }]);
  assert.throws(
    () => limits.checkMessages([{ content: "a" }, { content: "b" }, { content: "c" }]),
    (e: unknown) => e instanceof ServiceError && e.kind === "invalid_request" && e.code === "too_many_messages" && e.param === "messages" && /3, the limit is 2/.test(e.message),
  );
  assert.throws(
    () => limits.checkMessages([{ content: "ok" }, { content: "too long" }]),
    (e: unknown) => e instanceof ServiceError && e.code === "message_too_long" && e.param === "messages[1].content" && /8 characters long; the limit is 5/.test(e.message),
  );
  assert.deepEqual(rejected, ["too_many_messages", "message_too_long"]);
});

test("a model's capacity is re-read as it changes (a fleet's follows its replicas' health): waiters are let in as it grows", async () => {
  let capacity = 1;
  const { limits } = build({ ...quiet, maxConcurrentPerIp: 0, queue: { keepAliveMs: 100 } }, { capacityOf: (model) => (model === "m" ? capacity : undefined) });
  const first = await limits.admitCompletion({ identity: fromIp("1.1.1.1"), model: "m" });
  const second = await limits.admitCompletion({ identity: fromIp("2.2.2.2"), model: "m" });
  assert.deepEqual([first.queued, second.queued], [false, true]);
  // A replica came back: the next arrival finds the waiting request let in first, and itself waits.
  capacity = 2;
  const third = await limits.admitCompletion({ identity: fromIp("3.3.3.3"), model: "m" });
  await second.ready;
  assert.equal(third.queued, true, "the place that opened went to the one already waiting");
  // Grown again with no arrival and no release: the queue's tick lets the waiter in. (Its timer
  // does not hold the process open, a server's sockets do: this one stands in for them.)
  capacity = 3;
  const alive = setTimeout(() => undefined, 10_000);
  await third.ready;
  clearTimeout(alive);
  assert.deepEqual([limits.load()[0]!.running, limits.load()[0]!.capacity], [3, 3]);
  // Shrunk (replicas out of rotation): running requests finish; nobody new starts until below it.
  capacity = 1;
  const fourth = await limits.admitCompletion({ identity: fromIp("4.4.4.4"), model: "m" });
  assert.equal(fourth.queued, true);
  first.finish();
  second.finish();
  assert.ok(fourth.position() !== null, "2 running, capacity 1: still waiting");
  third.finish();
  await fourth.ready;
  fourth.finish();
  await limits.close();
});

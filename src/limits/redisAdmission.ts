import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { ServiceError } from "../errors.ts";
import type { AdmissionBackend, AdmissionContext, CapLimits, MemoryAdmission, ModelLoad } from "./admissionBackend.ts";
import { retryAfterSeconds, type EnterOptions, type QueueSettings, type QueueUpdate, type Slot } from "./admissionQueue.ts";
import type { Identity } from "./identity.ts";

/**
 * Cluster-wide admission: the fair queue (start-time fair queueing, as ./fairQueue.ts) and the
 * running places of every model, and the concurrency caps, kept in Redis and shared by every
 * Sputnik that uses the same Redis and key prefix.
 *
 * Every place is a lease: a sorted-set member scored with its expiry (Redis's own clock, so the
 * gateways' clocks need not agree). The holding gateway renews its leases every `pollMs`; a
 * gateway that dies stops renewing and its places are dropped by the next script that runs after
 * `leaseMs`. Each decision is one Lua script, so two gateways never both take the last place.
 *
 * Per model, under `<prefix>adm:{<model>}:` (one hash tag, so a Redis Cluster keeps them together):
 *   slots   running places: member → lease expiry (a waiter granted a place keeps its member)
 *   queue   waiting requests: member → virtual start tag; members are "<seq, 16 digits>|<flow>",
 *           so ties on the tag go to the earlier arrival, as in FairQueue
 *   wlease  waiting requests: member → lease expiry
 *   last    flow → its last virtual finish tag;  weight: flow → its weight;  per: flow → queued count
 *   meta    vt (the virtual time), seq, turnAt / turnMs (how fast the line moves, cluster-wide)
 *
 * A freed place goes to the globally first waiter inside the same script that frees it (`pump`),
 * which then publishes the granted members. The gateway holding a granted waiter learns of it by
 * that message at once, or by its next poll when the message was lost (a reconnect) — polls are
 * also what hands out places freed by expiry, which nobody announces. Pub/sub alone would leave
 * dead holders' places idle; polling alone would add up to `pollMs` to every handoff.
 */
const PRELUDE = `
local slots, queue, wlease, last, weights, per, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function flowOf(member) return string.sub(member, 18) end
local function dropFlow(flow)
  if redis.call('HINCRBY', per, flow, -1) <= 0 then redis.call('HDEL', per, flow) end
end
local function purge()
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  local dead = redis.call('ZRANGEBYSCORE', wlease, '-inf', now)
  for _, m in ipairs(dead) do
    redis.call('ZREM', wlease, m)
    if redis.call('ZREM', queue, m) == 1 then dropFlow(flowOf(m)) end
  end
end
local function vt() return tonumber(redis.call('HGET', meta, 'vt') or '0') end
local function nextStart(flow) return math.max(vt(), tonumber(redis.call('HGET', last, flow) or '0')) end
local function turnMs(fallback) return tonumber(redis.call('HGET', meta, 'turnMs') or '') or fallback end
local function pump(capacity, leaseMs, channel, model)
  local granted = {}
  while redis.call('ZCARD', slots) < capacity do
    local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
    if #head == 0 then break end
    local m = head[1]
    -- The place keeps the waiter's lease: its gateway renews it at its next poll, and a waiter
    -- whose gateway died holds the place no longer than it would have held its turn in line
    -- (a fresh lease here could keep a dead gateway's place for twice the lease time).
    local expires = tonumber(redis.call('ZSCORE', wlease, m) or '') or (now + leaseMs)
    redis.call('ZREM', queue, m)
    redis.call('ZREM', wlease, m)
    redis.call('ZADD', slots, expires, m)
    redis.call('HSET', meta, 'vt', head[2])
    dropFlow(flowOf(m))
    -- Only turns taken back to back count: a gap while nobody waited is idleness, not speed.
    local at = tonumber(redis.call('HGET', meta, 'turnAt') or '')
    if at then
      local gap = math.max(0, now - at)
      local mean = tonumber(redis.call('HGET', meta, 'turnMs') or '')
      if mean then mean = mean + (gap - mean) / 32 else mean = gap end
      redis.call('HSET', meta, 'turnMs', mean)
    end
    if redis.call('ZCARD', queue) > 0 then redis.call('HSET', meta, 'turnAt', now) else redis.call('HDEL', meta, 'turnAt') end
    granted[#granted + 1] = m
  end
  if #granted > 0 then redis.call('PUBLISH', channel, cjson.encode({ model, granted })) end
end
-- FairQueue.turnsBeforeTag: queued requests ahead, plus the turns other waiting flows' next
-- requests will take because their tags are still below this one.
local function turnsBefore(flow, start, member)
  local turns
  if member then turns = redis.call('ZRANK', queue, member) else turns = redis.call('ZCOUNT', queue, '-inf', start) end
  local v = vt()
  local flows = redis.call('HKEYS', per)
  for _, other in ipairs(flows) do
    if other ~= flow then
      local from = math.max(v, tonumber(redis.call('HGET', last, other) or '0'))
      if from < start then turns = turns + math.ceil((start - from) * tonumber(redis.call('HGET', weights, other) or '1')) end
    end
  end
  return turns
end
-- A finish tag at or below V no longer changes any tag: forgetting it bounds memory.
local function forgetIdleFlows()
  if redis.call('HLEN', last) <= 2 * redis.call('HLEN', per) + 64 then return end
  local v = vt()
  local all = redis.call('HGETALL', last)
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) <= v and redis.call('HEXISTS', per, all[i]) == 0 then
      redis.call('HDEL', last, all[i])
      redis.call('HDEL', weights, all[i])
    end
  end
end
-- Every active gateway runs ENTER or TICK at least every pollMs; a model nobody has used for a
-- minute (and several leases) holds nothing worth keeping, and starts afresh.
local function touch(leaseMs)
  for i = 1, 7 do redis.call('PEXPIRE', KEYS[i], math.max(60000, 6 * leaseMs)) end
end
`;

/** ARGV: capacity, leaseMs, channel, model, flow, weight, slotId, maxLength, maxPerUser, maxWaitMs, fallbackTurnMs */
const ENTER = `${PRELUDE}
local capacity, leaseMs, channel, model = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local flow, weight, slotId = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local maxLength, maxPerUser, maxWaitMs, fallback = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
purge()
pump(capacity, leaseMs, channel, model)
touch(leaseMs)
local start = nextStart(flow)
if redis.call('ZCARD', queue) == 0 and redis.call('ZCARD', slots) < capacity then
  redis.call('HSET', last, flow, start + 1 / weight)
  redis.call('HSET', weights, flow, weight)
  redis.call('HSET', meta, 'vt', start)
  redis.call('ZADD', slots, now + leaseMs, slotId)
  return { 'run' }
end
local turn = turnMs(fallback)
local queued = tonumber(redis.call('HGET', per, flow) or '0')
if queued >= maxPerUser then
  return { 'queue_user_full', tostring((redis.call('ZCOUNT', queue, '-inf', start) - queued + 1) * turn) }
end
local length = redis.call('ZCARD', queue)
if length >= maxLength then return { 'queue_full', tostring(length * turn), length } end
local estimate = (turnsBefore(flow, start, nil) + 1) * turn
if estimate > maxWaitMs then return { 'queue_wait_too_long', tostring(estimate) } end
local member = string.format('%016d', redis.call('HINCRBY', meta, 'seq', 1)) .. '|' .. flow
redis.call('HSET', weights, flow, weight)
redis.call('HSET', last, flow, start + 1 / weight)
redis.call('ZADD', queue, start, member)
redis.call('ZADD', wlease, now + leaseMs, member)
redis.call('HINCRBY', per, flow, 1)
return { 'queued', member, redis.call('ZRANK', queue, member) + 1, length + 1, turnsBefore(flow, start, member), tostring(turn) }
`;

/**
 * ARGV: capacity, leaseMs, channel, model, fallbackTurnMs, slot count, slot ids…, waiter members…
 * Renews this gateway's leases and hands out places freed by expiry. Answers the queue length,
 * the turn estimate, per slot 1 (held) / 0 (lost), and per waiter {1, position, turns} while it
 * waits, {2} once granted, {0} when its lease is gone.
 */
const TICK = `${PRELUDE}
local capacity, leaseMs, channel, model, fallback = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local nSlots = tonumber(ARGV[6])
purge()
pump(capacity, leaseMs, channel, model)
touch(leaseMs)
local held = {}
for i = 7, 6 + nSlots do
  if redis.call('ZSCORE', slots, ARGV[i]) then
    redis.call('ZADD', slots, now + leaseMs, ARGV[i])
    held[#held + 1] = 1
  else
    held[#held + 1] = 0
  end
end
local waiters = {}
for i = 7 + nSlots, #ARGV do
  local m = ARGV[i]
  local start = redis.call('ZSCORE', queue, m)
  if start then
    redis.call('ZADD', wlease, now + leaseMs, m)
    waiters[#waiters + 1] = { 1, redis.call('ZRANK', queue, m) + 1, turnsBefore(flowOf(m), tonumber(start), m) }
  elseif redis.call('ZSCORE', slots, m) then
    redis.call('ZADD', slots, now + leaseMs, m)
    waiters[#waiters + 1] = { 2 }
  else
    waiters[#waiters + 1] = { 0 }
  end
end
forgetIdleFlows()
return { redis.call('ZCARD', queue), tostring(turnMs(fallback)), held, waiters }
`;

/**
 * ARGV: capacity, leaseMs, channel, model, member. A waiter leaves the line (1), or, when it was
 * granted a place meanwhile, gives that place back (2); 0 when it was gone already. A flow is not
 * charged for a request that never ran: when it was the flow's latest, the flow's next request
 * takes its tag (FairQueue.remove).
 */
const LEAVE = `${PRELUDE}
local capacity, leaseMs, channel, model, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local result = 0
local start = redis.call('ZSCORE', queue, member)
if start then
  redis.call('ZREM', queue, member)
  redis.call('ZREM', wlease, member)
  local flow = flowOf(member)
  dropFlow(flow)
  local weight = tonumber(redis.call('HGET', weights, flow) or '1')
  local finish = tonumber(redis.call('HGET', last, flow) or '0')
  if math.abs(finish - (tonumber(start) + 1 / weight)) < 1e-9 then redis.call('HSET', last, flow, start) end
  result = 1
elseif redis.call('ZREM', slots, member) == 1 then
  result = 2
end
purge()
pump(capacity, leaseMs, channel, model)
return result
`;

/** ARGV: capacity, leaseMs, channel, model, slotId. Frees a running place; the first waiter takes it. */
const RELEASE = `${PRELUDE}
local capacity, leaseMs, channel, model = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
redis.call('ZREM', slots, ARGV[5])
purge()
pump(capacity, leaseMs, channel, model)
return 1
`;

/** KEYS: one sorted set per cap. ARGV: leaseMs, leaseId, the caps' limits. Answers 0, or the 1-based cap that is full. */
const CAPS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leaseMs, id = tonumber(ARGV[1]), ARGV[2]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + leaseMs, id)
  redis.call('PEXPIRE', key, 2 * leaseMs)
end
return 0
`;

/** KEYS: the caps a lease holds. ARGV: leaseMs, leaseId. Renews the lease where it still exists. */
const CAPS_RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local leaseMs, id = tonumber(ARGV[1]), ARGV[2]
for _, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, id) then
    redis.call('ZADD', key, now + leaseMs, id)
    redis.call('PEXPIRE', key, 2 * leaseMs)
  end
end
return 0
`;

const SCRIPTS = {
  sputnikAdmEnter: { numberOfKeys: 7, lua: ENTER },
  sputnikAdmTick: { numberOfKeys: 7, lua: TICK },
  sputnikAdmLeave: { numberOfKeys: 7, lua: LEAVE },
  sputnikAdmRelease: { numberOfKeys: 7, lua: RELEASE },
} as const;

type Script = (...args: Array<string | number>) => Promise<unknown>;

export interface RedisAdmissionOptions {
  /** Key prefix (the deployment's `limits.redisKeyPrefix`); keys are `<prefix>adm:…`. */
  prefix: string;
  leaseMs: number;
  pollMs: number;
  logger?: Logger;
}

/** GRACE as in ./admissionQueue.ts: a waiter is given up after twice maxWaitMs. */
const GRACE = 2;

interface Waiter {
  member: string;
  options: EnterOptions;
  enqueuedAt: number;
  update: QueueUpdate;
  /** Takes the granted place (the member is now a slot this gateway holds). */
  admit(): void;
  /** Leaves the line without running, rejecting `ready`. */
  leave(reason: unknown): void;
}

/** One model as this gateway sees it: its own waiters and running places. */
interface ModelState {
  model: string;
  keys: string[];
  waiters: Map<string, Waiter>;
  /** Running places this gateway holds: slot id → when it started. */
  running: Map<string, number>;
  /** Durations of this gateway's runs (the latest 31): their median is the service estimate. */
  service: number[];
  /** The cluster's turn estimate as last read; null before any measure. */
  clusterTurnMs: number | null;
  ticker: NodeJS.Timeout | null;
  settings: QueueSettings;
}

export class RedisAdmission implements AdmissionBackend {
  /** Ids of this gateway's leases: unique across gateways and restarts. */
  private readonly gateway = randomBytes(8).toString("hex");
  private counter = 0;
  private readonly models = new Map<string, ModelState>();
  /** Cap leases this gateway holds: lease id → the cap keys. */
  private readonly capLeases = new Map<string, string[]>();
  private readonly channel: string;
  private readonly subscriber: Redis;
  private readonly subscribed: Promise<void>;
  private poller: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;
  private lastWarning = 0;

  constructor(
    private readonly redis: Redis,
    private readonly context: AdmissionContext,
    private readonly fallback: MemoryAdmission,
    private readonly options: RedisAdmissionOptions,
  ) {
    for (const [name, definition] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, definition);
    }
    if (!("sputnikAdmCaps" in redis)) redis.defineCommand("sputnikAdmCaps", { lua: CAPS });
    if (!("sputnikAdmCapsRenew" in redis)) redis.defineCommand("sputnikAdmCapsRenew", { lua: CAPS_RENEW });
    this.channel = `${options.prefix}adm:granted`;
    this.subscriber = redis.duplicate({ lazyConnect: true });
    this.subscriber.on("error", () => undefined);
    this.subscriber.on("message", (_channel: string, message: string) => this.onGranted(message));
    this.subscribed = this.subscriber
      .connect()
      .then(() => this.subscriber.subscribe(this.channel))
      .then(
        () => undefined,
        (error: unknown) => this.warn(error, "Redis pub/sub unavailable: freed places reach this gateway's waiters by polling only"),
      );
  }

  serviceEstimateMs(model: string): number | undefined {
    const settings = this.context.settingsOf(model);
    if (settings === undefined) return undefined;
    const state = this.models.get(model);
    return state && state.service.length > 0 ? median(state.service) : settings.assumedServiceMs;
  }

  async enter(model: string, options: EnterOptions): Promise<Slot | undefined> {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("aborted");
    if (this.closed) throw shuttingDown();
    const settings = this.context.settingsOf(model);
    if (settings === undefined) return undefined;
    await this.subscribed;
    const state = this.stateOf(model, settings);
    const slotId = this.newId();
    let answer: unknown[];
    try {
      answer = (await this.script("sputnikAdmEnter")(
        ...state.keys,
        settings.capacity,
        this.options.leaseMs,
        this.channel,
        model,
        options.flow,
        options.weight,
        slotId,
        settings.maxLength,
        settings.maxPerUser,
        settings.maxWaitMs,
        this.fallbackTurnMs(state),
      )) as unknown[];
    } catch (error) {
      // Admission keeps working while Redis is away, per process, rather than failing every request.
      this.warn(error, "Redis unreachable: admission is per process until it is back");
      return this.fallback.enter(model, options);
    }
    if (this.closed) {
      // Drained while the script ran: give back what it took.
      if (answer[0] === "run") this.releaseSlot(state, slotId);
      else if (answer[0] === "queued") this.leaveRemote(state, String(answer[1]));
      throw shuttingDown();
    }
    switch (answer[0]) {
      case "run":
        return this.runDirectly(state, slotId);
      case "queued":
        return this.enqueue(state, options, answer);
      default:
        throw this.refusal(model, settings, answer);
    }
  }

  async acquireCaps(identity: Identity, caps: CapLimits, retryAfterS: number): Promise<() => void> {
    const keys: string[] = [];
    const limits: number[] = [];
    const names: Array<"concurrency_ip" | "concurrency_key"> = [];
    if (caps.perIp > 0) {
      keys.push(`${this.options.prefix}adm:cap:ip:${identity.ip}`);
      limits.push(caps.perIp);
      names.push("concurrency_ip");
    }
    if (caps.perKey > 0 && identity.apiKeyId !== null) {
      keys.push(`${this.options.prefix}adm:cap:key:${identity.apiKeyId}`);
      limits.push(caps.perKey);
      names.push("concurrency_key");
    }
    if (keys.length === 0) return () => undefined;
    const leaseId = this.newId();
    let full: number;
    try {
      full = Number(await this.script("sputnikAdmCaps")(keys.length, ...keys, this.options.leaseMs, leaseId, ...limits));
    } catch (error) {
      this.warn(error, "Redis unreachable: concurrency caps are per process until it is back");
      return this.fallback.acquireCaps(identity, caps, retryAfterS);
    }
    if (full > 0) {
      const reason = names[full - 1]!;
      this.context.rejected(reason);
      const message =
        reason === "concurrency_ip"
          ? `Too many requests open at once from your address (limit ${caps.perIp}); wait for one to finish.`
          : `Too many requests open at once with this API key (limit ${caps.perKey}); wait for one to finish.`;
      throw new ServiceError("rate_limited", message, { code: reason, retryAfterS: Math.max(1, Math.ceil(retryAfterS)) });
    }
    this.capLeases.set(leaseId, keys);
    this.startPolling();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.capLeases.delete(leaseId);
      const pipeline = this.redis.pipeline();
      for (const key of keys) pipeline.zrem(key, leaseId);
      // A release that fails (Redis away) is taken back by the lease's expiry.
      pipeline.exec().catch(() => undefined);
    };
  }

  load(): ModelLoad[] {
    const loads = new Map<string, ModelLoad>();
    for (const state of this.models.values()) {
      loads.set(state.model, { model: state.model, queued: state.waiters.size, running: state.running.size, turnEstimateMs: this.turnEstimateMs(state) });
    }
    // Requests admitted per process while Redis was away count too.
    for (const load of this.fallback.load()) {
      const mine = loads.get(load.model);
      if (mine) loads.set(load.model, { ...mine, queued: mine.queued + load.queued, running: mine.running + load.running });
      else loads.set(load.model, load);
    }
    return [...loads.values()];
  }

  drain(): void {
    this.closed = true;
    this.fallback.drain();
    for (const state of this.models.values()) {
      for (const waiter of [...state.waiters.values()]) waiter.leave(shuttingDown());
    }
  }

  /** Gives back every lease still held (best effort; expiry takes back the rest) and lets go of pub/sub. */
  async close(): Promise<void> {
    this.drain();
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    for (const state of this.models.values()) {
      if (state.ticker) clearInterval(state.ticker);
      state.ticker = null;
    }
    const pending: Array<Promise<unknown>> = [];
    for (const state of this.models.values()) {
      for (const slotId of [...state.running.keys()]) pending.push(this.releaseSlot(state, slotId));
    }
    for (const [leaseId, keys] of this.capLeases) {
      const pipeline = this.redis.pipeline();
      for (const key of keys) pipeline.zrem(key, leaseId);
      pending.push(pipeline.exec().catch(() => undefined));
    }
    this.capLeases.clear();
    await Promise.all(pending);
    await this.fallback.close();
    // Nothing to flush on a subscriber; quit() could wait on a connection that never came up.
    this.subscriber.disconnect();
  }

  private runDirectly(state: ModelState, slotId: string): Slot {
    state.running.set(slotId, performance.now());
    this.startPolling();
    this.context.waited(state.model, 0);
    let released = false;
    return {
      queued: false,
      ready: Promise.resolve(),
      waitedMs: () => 0,
      position: () => null,
      release: (measured = true) => {
        if (released) return;
        released = true;
        this.finishRun(state, slotId, measured);
      },
    };
  }

  private enqueue(state: ModelState, options: EnterOptions, answer: unknown[]): Slot {
    const member = String(answer[1]);
    const turnMs = Number(answer[5]);
    const enqueuedAt = performance.now();
    let settledAt: number | null = null;
    let phase: "waiting" | "running" | "left" | "released" = "waiting";
    let resolveReady!: () => void;
    let rejectReady!: (reason: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // The caller awaits `ready`; this only keeps an unawaited refusal from crashing the process.
    ready.catch(() => undefined);

    const onAbort = () => waiter.leave(options.signal?.reason ?? new Error("aborted"));
    const deadlineMs = GRACE * state.settings.maxWaitMs;
    const timer = setTimeout(() => {
      this.context.rejected("queue_timeout");
      waiter.leave(
        new ServiceError(
          "unavailable",
          `The server is busy: waited ${Math.round(deadlineMs / 1000)} s for ${state.model} without a free place. Please retry later.`,
          { code: "queue_timeout", retryAfterS: retryAfterSeconds(this.turnEstimateMs(state)) },
        ),
      );
    }, deadlineMs);
    timer.unref();
    const stopWaiting = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      settledAt = performance.now();
      state.waiters.delete(member);
      this.stopTickerIfIdle(state);
    };
    const waiter: Waiter = {
      member,
      options,
      enqueuedAt,
      update: { position: Number(answer[2]), queueLength: Number(answer[3]), estimatedWaitS: Math.ceil(((Number(answer[4]) + 1) * turnMs) / 1000) },
      admit: () => {
        if (phase !== "waiting") return;
        stopWaiting();
        phase = "running";
        state.running.set(member, performance.now());
        this.context.waited(state.model, performance.now() - enqueuedAt);
        resolveReady();
      },
      leave: (reason) => {
        if (phase !== "waiting") return;
        phase = "left";
        stopWaiting();
        rejectReady(reason);
        // At once in Redis too: the line moves up for every gateway's waiters.
        this.leaveRemote(state, member);
      },
    };
    state.waiters.set(member, waiter);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // The client may have left while the script ran: an aborted signal fires no more events.
    if (options.signal?.aborted) onAbort();
    this.startTicker(state);
    this.startPolling();
    return {
      queued: true,
      ready,
      waitedMs: () => (settledAt ?? performance.now()) - enqueuedAt,
      position: () => (phase === "waiting" ? waiter.update : null),
      release: (measured = true) => {
        if (phase === "waiting") waiter.leave(new Error("released while waiting"));
        else if (phase === "running") {
          phase = "released";
          this.finishRun(state, member, measured);
        }
      },
    };
  }

  private finishRun(state: ModelState, slotId: string, measured: boolean): void {
    const startedAt = state.running.get(slotId);
    if (measured && startedAt !== undefined) {
      state.service.push(performance.now() - startedAt);
      if (state.service.length > 31) state.service.shift();
    }
    void this.releaseSlot(state, slotId);
  }

  private async releaseSlot(state: ModelState, slotId: string): Promise<void> {
    state.running.delete(slotId);
    try {
      await this.script("sputnikAdmRelease")(...state.keys, state.settings.capacity, this.options.leaseMs, this.channel, state.model, slotId);
    } catch (error) {
      this.warn(error, "Redis unreachable: a running place is given back when its lease runs out");
    }
  }

  private leaveRemote(state: ModelState, member: string): void {
    this.script("sputnikAdmLeave")(...state.keys, state.settings.capacity, this.options.leaseMs, this.channel, state.model, member).catch((error: unknown) =>
      this.warn(error, "Redis unreachable: a waiting place is given back when its lease runs out"),
    );
  }

  /** A pub/sub message: members granted a place on a model; ours start running. */
  private onGranted(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== "string" || !Array.isArray(parsed[1])) return;
    const state = this.models.get(parsed[0]);
    if (!state) return;
    for (const member of parsed[1] as unknown[]) {
      if (typeof member === "string") state.waiters.get(member)?.admit();
    }
  }

  /** Renews every lease this gateway holds, hands out places freed by expiry, refreshes places in line. */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const work: Array<Promise<void>> = [];
      for (const state of this.models.values()) {
        if (state.running.size === 0 && state.waiters.size === 0) continue;
        work.push(this.tick(state));
      }
      for (const [leaseId, keys] of this.capLeases) {
        work.push(
          this.script("sputnikAdmCapsRenew")(keys.length, ...keys, this.options.leaseMs, leaseId).then(
            () => undefined,
            (error: unknown) => this.warn(error, "Redis unreachable: cannot renew concurrency leases"),
          ),
        );
      }
      await Promise.all(work);
    } finally {
      this.polling = false;
      if (!this.active()) this.stopPolling();
    }
  }

  private async tick(state: ModelState): Promise<void> {
    // Capacity as it is now (a fleet's follows its replicas' health): the tick's pump hands out what grew.
    state.settings = this.context.settingsOf(state.model) ?? state.settings;
    const slots = [...state.running.keys()];
    const waiters = [...state.waiters.keys()];
    let answer: [number, string, number[], number[][]];
    try {
      answer = (await this.script("sputnikAdmTick")(
        ...state.keys,
        state.settings.capacity,
        this.options.leaseMs,
        this.channel,
        state.model,
        this.fallbackTurnMs(state),
        slots.length,
        ...slots,
        ...waiters,
      )) as [number, string, number[], number[][]];
    } catch (error) {
      this.warn(error, "Redis unreachable: cannot renew admission leases");
      return;
    }
    const [queueLength, turnText, held, statuses] = answer;
    const turn = Number(turnText);
    state.clusterTurnMs = turn;
    // A lease lost (this gateway stalled past it) cannot be taken back: the place may be another
    // request's by now. The request runs on; its release later removes nothing (ids are unique).
    if (held.some((ok) => ok === 0)) this.options.logger?.warn({ model: state.model }, "a running place's lease ran out before it was renewed");
    statuses.forEach((status, i) => {
      const waiter = state.waiters.get(waiters[i]!);
      if (!waiter) return;
      if (status[0] === 2) waiter.admit();
      else if (status[0] === 1) {
        waiter.update = { position: status[1]!, queueLength, estimatedWaitS: Math.ceil(((status[2]! + 1) * turn) / 1000) };
      } else {
        this.context.rejected("queue_timeout");
        waiter.leave(
          new ServiceError("unavailable", `The server is busy: the place in line for ${state.model} was lost. Please retry.`, {
            code: "queue_timeout",
            retryAfterS: retryAfterSeconds(turn),
          }),
        );
      }
    });
  }

  private refusal(model: string, settings: QueueSettings, answer: unknown[]): ServiceError {
    const reason = String(answer[0]);
    const ms = Number(answer[1]);
    this.context.rejected(reason);
    switch (reason) {
      case "queue_user_full":
        return new ServiceError("rate_limited", `You already have ${settings.maxPerUser} requests waiting for ${model}; wait for them to finish.`, {
          code: reason,
          retryAfterS: retryAfterSeconds(ms),
        });
      case "queue_full":
        return new ServiceError("unavailable", `The server is busy: ${Number(answer[2])} requests are waiting for ${model}. Please retry later.`, {
          code: reason,
          retryAfterS: retryAfterSeconds(ms),
        });
      default:
        return new ServiceError(
          "unavailable",
          `The server is busy: the wait for ${model} would be about ${Math.ceil(ms / 1000)} s, over the ${Math.ceil(settings.maxWaitMs / 1000)} s limit. Please retry later.`,
          { code: "queue_wait_too_long", retryAfterS: retryAfterSeconds(ms - settings.maxWaitMs) },
        );
    }
  }

  private stateOf(model: string, settings: QueueSettings): ModelState {
    let state = this.models.get(model);
    if (!state) {
      const base = `${this.options.prefix}adm:{${model}}:`;
      state = {
        model,
        keys: ["slots", "queue", "wlease", "last", "weight", "per", "meta"].map((k) => base + k),
        waiters: new Map(),
        running: new Map(),
        service: [],
        clusterTurnMs: null,
        ticker: null,
        settings,
      };
      this.models.set(model, state);
    }
    state.settings = settings;
    return state;
  }

  /** Before the cluster measured how fast the line moves: this gateway's service time / capacity. */
  private fallbackTurnMs(state: ModelState): number {
    const service = state.service.length > 0 ? median(state.service) : state.settings.assumedServiceMs;
    return service / Math.max(1, state.settings.capacity);
  }

  private turnEstimateMs(state: ModelState): number {
    return state.clusterTurnMs ?? this.fallbackTurnMs(state);
  }

  /** Keep-alive places in line, every `updateEveryMs`, from the last poll's answer. */
  private startTicker(state: ModelState): void {
    if (state.ticker) return;
    state.ticker = setInterval(() => {
      for (const waiter of state.waiters.values()) {
        try {
          waiter.options.onUpdate?.(waiter.update);
        } catch {
          // A listener's failure (its client is gone) must not stop the others' updates.
        }
      }
    }, state.settings.updateEveryMs);
    state.ticker.unref();
  }

  private stopTickerIfIdle(state: ModelState): void {
    if (state.waiters.size > 0 || !state.ticker) return;
    clearInterval(state.ticker);
    state.ticker = null;
  }

  private active(): boolean {
    if (this.capLeases.size > 0) return true;
    for (const state of this.models.values()) if (state.running.size > 0 || state.waiters.size > 0) return true;
    return false;
  }

  private startPolling(): void {
    if (this.poller || this.closed) return;
    this.poller = setInterval(() => void this.poll(), this.options.pollMs);
    this.poller.unref();
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  private newId(): string {
    return `${this.gateway}:${(this.counter++).toString(36)}`;
  }

  private script(name: string): Script {
    const command = (this.redis as unknown as Record<string, Script>)[name]!;
    return (...args) => command.call(this.redis, ...args);
  }

  private warn(error: unknown, message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 30_000) return;
    this.lastWarning = now;
    this.options.logger?.warn({ err: error }, message);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function shuttingDown(): ServiceError {
  return new ServiceError("unavailable", "The server is shutting down. Please retry shortly.", { code: "shutting_down", retryAfterS: 5 });
}

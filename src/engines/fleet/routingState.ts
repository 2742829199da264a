import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

/** A request's hold on a replica: counted in the replica's in-flight load until released. */
export interface Lease {
  release(): void;
}

/**
 * What routing remembers between requests: which replica each affinity key was last sent to (with
 * a TTL), and how many requests each replica has in flight. In memory it is one gateway's; in
 * Redis every gateway sharing it routes a conversation's next turn to the same replica and sees
 * the others' loads.
 */
export interface RoutingState {
  /** One read per request: the replica `key` was last sent to (null: none, or no key) and each replica's in-flight count. */
  read(model: string, key: string | null, replicas: string[]): Promise<{ remembered: string | null; loads: number[] }>;
  /** Records that the request goes to `replica` (remembering it for `key` for `ttlMs`) and holds an in-flight lease on it. */
  claim(model: string, key: string | null, replica: string, ttlMs: number): Promise<Lease>;
  close(): Promise<void>;
}

const MAX_MEMORY_KEYS = 100_000;

export class MemoryRoutingState implements RoutingState {
  private readonly affinity = new Map<string, { replica: string; expiresAt: number }>();
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async read(model: string, key: string | null, replicas: string[]): Promise<{ remembered: string | null; loads: number[] }> {
    return this.readNow(model, key, replicas);
  }

  readNow(model: string, key: string | null, replicas: string[]): { remembered: string | null; loads: number[] } {
    let remembered: string | null = null;
    if (key !== null) {
      const entry = this.affinity.get(`${model}\0${key}`);
      if (entry && entry.expiresAt > this.now()) remembered = entry.replica;
    }
    return { remembered, loads: replicas.map((r) => this.inFlight.get(`${model}\0${r}`) ?? 0) };
  }

  async claim(model: string, key: string | null, replica: string, ttlMs: number): Promise<Lease> {
    return this.claimNow(model, key, replica, ttlMs);
  }

  claimNow(model: string, key: string | null, replica: string, ttlMs: number): Lease {
    if (key !== null) {
      const id = `${model}\0${key}`;
      // Re-inserted so the Map's order is last use: the oldest keys go first when it is full.
      this.affinity.delete(id);
      this.affinity.set(id, { replica, expiresAt: this.now() + ttlMs });
      if (this.affinity.size > MAX_MEMORY_KEYS) this.affinity.delete(this.affinity.keys().next().value!);
    }
    const slot = `${model}\0${replica}`;
    this.inFlight.set(slot, (this.inFlight.get(slot) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight.set(slot, Math.max(0, (this.inFlight.get(slot) ?? 0) - 1));
      },
    };
  }

  async close(): Promise<void> {}
}

/** Reads the remembered replica and every replica's live lease count, pruning expired leases, on Redis's clock. */
const READ = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
if ARGV[1] == '1' then out[1] = redis.call('GET', KEYS[1]) or '' else out[1] = '' end
for i = 2, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  out[i] = redis.call('ZCARD', KEYS[i])
end
return out
`;

/** Adds a lease (scored by its expiry on Redis's clock) and remembers the key's replica. */
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
if ARGV[5] == '1' then redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4])) end
return 1
`;

/** Extends the leases still held (XX: a lease already pruned as expired is not brought back). */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/**
 * The routing state in Redis, shared by every gateway: `<prefix>{<model>}:aff:<key>` holds a
 * key's replica (expiring after the affinity TTL), `<prefix>{<model>}:inflight:<replica>` a
 * sorted set of in-flight leases scored by expiry. Leases are renewed while their request runs,
 * so a gateway that dies (SIGKILL) stops counting against a replica within the lease time. While
 * Redis is unreachable each gateway routes on its own memory instead of failing requests.
 */
export class RedisRoutingState implements RoutingState {
  private readonly gateway = randomBytes(6).toString("hex");
  private sequence = 0;
  private readonly held = new Map<string, Set<string>>();
  private readonly fallback = new MemoryRoutingState();
  private readonly renewer: NodeJS.Timeout;
  private lastWarning = 0;

  constructor(
    private readonly redis: Redis,
    private readonly options: { prefix: string; leaseMs: number; logger?: Logger | undefined },
  ) {
    if (!("sputnikFleetRead" in redis)) {
      redis.defineCommand("sputnikFleetRead", { lua: READ });
      redis.defineCommand("sputnikFleetClaim", { numberOfKeys: 2, lua: CLAIM });
      redis.defineCommand("sputnikFleetRenew", { numberOfKeys: 1, lua: RENEW });
    }
    this.renewer = setInterval(() => void this.renew(), Math.max(250, Math.floor(options.leaseMs / 3)));
    this.renewer.unref();
  }

  async read(model: string, key: string | null, replicas: string[]): Promise<{ remembered: string | null; loads: number[] }> {
    const keys = [this.affinityKey(model, key ?? ""), ...replicas.map((r) => this.inFlightKey(model, r))];
    try {
      const out = (await this.command("sputnikFleetRead")(keys.length, ...keys, key === null ? "0" : "1")) as [string, ...number[]];
      return { remembered: out[0] === "" ? null : out[0], loads: out.slice(1).map(Number) };
    } catch (error) {
      this.warn(error);
      return this.fallback.readNow(model, key, replicas);
    }
  }

  async claim(model: string, key: string | null, replica: string, ttlMs: number): Promise<Lease> {
    const zset = this.inFlightKey(model, replica);
    const member = `${this.gateway}:${++this.sequence}`;
    try {
      await this.command("sputnikFleetClaim")(zset, this.affinityKey(model, key ?? ""), member, this.options.leaseMs, replica, ttlMs, key === null ? "0" : "1");
    } catch (error) {
      this.warn(error);
      return this.fallback.claimNow(model, key, replica, ttlMs);
    }
    let members = this.held.get(zset);
    if (!members) this.held.set(zset, (members = new Set()));
    members.add(member);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        members.delete(member);
        if (members.size === 0 && this.held.get(zset) === members) this.held.delete(zset);
        // Best effort: a lease that cannot be removed now expires with its lease time.
        this.redis.zrem(zset, member).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    clearInterval(this.renewer);
    await Promise.all([...this.held].map(([zset, members]) => this.redis.zrem(zset, ...members).catch(() => undefined)));
    this.held.clear();
  }

  private async renew(): Promise<void> {
    for (const [zset, members] of this.held) {
      if (members.size === 0) continue;
      await this.command("sputnikFleetRenew")(zset, this.options.leaseMs, ...members).catch((error: unknown) => this.warn(error));
    }
  }

  private command(name: string): Script {
    const fn = (this.redis as unknown as Record<string, Script>)[name]!;
    return fn.bind(this.redis);
  }

  private affinityKey(model: string, key: string): string {
    return `${this.options.prefix}{${model}}:aff:${key}`;
  }

  private inFlightKey(model: string, replica: string): string {
    return `${this.options.prefix}{${model}}:inflight:${replica}`;
  }

  private warn(error: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < 30_000) return;
    this.lastWarning = now;
    this.options.logger?.warn({ err: error }, "Redis unreachable: fleet routing uses this gateway's own state until it is back");
  }
}

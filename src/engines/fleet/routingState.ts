import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

/** A request's hold on a replica: counted in the replica's in-flight load until released. */
export interface Lease {
  release(): void;
}

/**
 * What routing remembers between requests: which replica each affinity key was last sent to (with
 * a TTL), which replica each indexed prompt prefix was last sent to (the prefix index: hashes of
 * message boundaries, LRU-bounded, with the same TTL), and how many requests each replica has in
 * flight. In memory it is one gateway's; in Redis every gateway sharing it routes a
 * conversation's next turn to the same replica and sees the others' loads.
 */
export interface RoutingState {
  /**
   * One read per request: the replica `key` was last sent to (null: none, or no key), each
   * replica's in-flight count, and (`prefix`, absent when none) the replica last sent the longest
   * of `prefixes` (longest first) that is still indexed, with its rank in that list.
   */
  read(model: string, key: string | null, replicas: string[], prefixes?: string[]): Promise<ReadResult>;
  /**
   * Records that the request goes to `replica` (remembering it for `key` and for each of
   * `prefixes` for `ttlMs`) and holds an in-flight lease on it.
   */
  claim(model: string, key: string | null, replica: string, ttlMs: number, prefixes?: string[]): Promise<Lease>;
  close(): Promise<void>;
}

export interface ReadResult {
  remembered: string | null;
  loads: number[];
  prefix?: { replica: string; rank: number };
}

export interface RoutingStateOptions {
  /** Most prefix hashes kept per model; the least recently sent go first. 0: no prefix index. */
  prefixEntries?: number;
  /** How long a prefix stays indexed after it was last sent (the affinity TTL). */
  prefixTtlMs?: number;
}

const MAX_MEMORY_KEYS = 100_000;

export class MemoryRoutingState implements RoutingState {
  private readonly affinity = new Map<string, { replica: string; expiresAt: number }>();
  /** Per model: prefix hash → replica, in order of last use (a Map keeps insertion order). */
  private readonly prefixes = new Map<string, Map<string, { replica: string; expiresAt: number }>>();
  private readonly inFlight = new Map<string, number>();
  private readonly prefixEntries: number;

  constructor(
    private readonly now: () => number = Date.now,
    options: RoutingStateOptions = {},
  ) {
    this.prefixEntries = options.prefixEntries ?? MAX_MEMORY_KEYS;
  }

  async read(model: string, key: string | null, replicas: string[], prefixes: string[] = []): Promise<ReadResult> {
    return this.readNow(model, key, replicas, prefixes);
  }

  readNow(model: string, key: string | null, replicas: string[], prefixes: string[] = []): ReadResult {
    let remembered: string | null = null;
    const now = this.now();
    if (key !== null) {
      const entry = this.affinity.get(`${model}\0${key}`);
      if (entry && entry.expiresAt > now) remembered = entry.replica;
    }
    const result: ReadResult = { remembered, loads: replicas.map((r) => this.inFlight.get(`${model}\0${r}`) ?? 0) };
    const index = this.prefixes.get(model);
    if (index) {
      for (const [rank, hash] of prefixes.entries()) {
        const entry = index.get(hash);
        if (entry && entry.expiresAt > now) {
          result.prefix = { replica: entry.replica, rank };
          break;
        }
      }
    }
    return result;
  }

  async claim(model: string, key: string | null, replica: string, ttlMs: number, prefixes: string[] = []): Promise<Lease> {
    return this.claimNow(model, key, replica, ttlMs, prefixes);
  }

  claimNow(model: string, key: string | null, replica: string, ttlMs: number, prefixes: string[] = []): Lease {
    const expiresAt = this.now() + ttlMs;
    if (key !== null) {
      const id = `${model}\0${key}`;
      // Re-inserted so the Map's order is last use: the oldest keys go first when it is full.
      this.affinity.delete(id);
      this.affinity.set(id, { replica, expiresAt });
      if (this.affinity.size > MAX_MEMORY_KEYS) this.affinity.delete(this.affinity.keys().next().value!);
    }
    if (prefixes.length > 0 && this.prefixEntries > 0) {
      let index = this.prefixes.get(model);
      if (!index) this.prefixes.set(model, (index = new Map()));
      // Shortest first, so that when the index is full the longest (most specific) are kept longest.
      for (const hash of [...prefixes].reverse()) {
        index.delete(hash);
        index.set(hash, { replica, expiresAt });
      }
      while (index.size > this.prefixEntries) index.delete(index.keys().next().value!);
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

/**
 * Reads the remembered replica, the longest indexed prefix still within its TTL, and every
 * replica's live lease count (pruning expired leases), on Redis's clock.
 * KEYS: affinity key, prefix hash, prefix LRU zset, in-flight zsets…; ARGV: has key, prefix TTL, prefix count, prefixes…
 */
const READ = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
if ARGV[1] == '1' then out[1] = redis.call('GET', KEYS[1]) or '' else out[1] = '' end
out[2] = ''
out[3] = -1
local ttl, count = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, count do
  local hash = ARGV[3 + i]
  local used = redis.call('ZSCORE', KEYS[3], hash)
  if used and tonumber(used) > now - ttl then
    local replica = redis.call('HGET', KEYS[2], hash)
    if replica then
      out[2] = replica
      out[3] = i - 1
      break
    end
  end
end
for i = 4, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  out[i] = redis.call('ZCARD', KEYS[i])
end
return out
`;

/**
 * Adds a lease (scored by its expiry on Redis's clock), remembers the key's replica and indexes
 * the prefixes (hash → replica, LRU zset scored by last use), dropping those past the TTL and the
 * least recently used beyond the bound, a bounded number per call.
 * KEYS: in-flight zset, affinity key, prefix hash, prefix LRU zset.
 * ARGV: member, lease ms, replica, TTL ms, has key, max prefixes, prefix count, prefixes (shortest first)…
 */
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, ttl = tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
if ARGV[5] == '1' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl) end
local max, count = tonumber(ARGV[6]), tonumber(ARGV[7])
if count > 0 and max > 0 then
  for i = 1, count do
    local hash = ARGV[7 + i]
    redis.call('HSET', KEYS[3], hash, ARGV[3])
    -- Shortest first with rising scores: the longest (most specific) stay longest when trimming.
    redis.call('ZADD', KEYS[4], now + (i - 1) / 1000, hash)
  end
  local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - ttl, 'LIMIT', 0, 256)
  local over = redis.call('ZCARD', KEYS[4]) - #stale - max
  if over > 0 then
    -- The stale ones are the lowest ranks: the least recently used come right after them.
    local oldest = redis.call('ZRANGE', KEYS[4], #stale, #stale + math.min(over, 256) - 1)
    for _, hash in ipairs(oldest) do stale[#stale + 1] = hash end
  end
  if #stale > 0 then
    redis.call('HDEL', KEYS[3], unpack(stale))
    redis.call('ZREM', KEYS[4], unpack(stale))
  end
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
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
 * key's replica (expiring after the affinity TTL), `<prefix>{<model>}:px` the prefix index (hash →
 * replica) with `:pxlru` its last uses, `<prefix>{<model>}:inflight:<replica>` a
 * sorted set of in-flight leases scored by expiry. Leases are renewed while their request runs,
 * so a gateway that dies (SIGKILL) stops counting against a replica within the lease time. While
 * Redis is unreachable each gateway routes on its own memory instead of failing requests.
 */
export class RedisRoutingState implements RoutingState {
  private readonly gateway = randomBytes(6).toString("hex");
  private sequence = 0;
  private readonly held = new Map<string, Set<string>>();
  private readonly fallback: MemoryRoutingState;
  private readonly renewer: NodeJS.Timeout;
  private lastWarning = 0;
  private readonly prefixEntries: number;
  private readonly prefixTtlMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: { prefix: string; leaseMs: number; logger?: Logger | undefined } & RoutingStateOptions,
  ) {
    this.prefixEntries = options.prefixEntries ?? MAX_MEMORY_KEYS;
    this.prefixTtlMs = options.prefixTtlMs ?? 3_600_000;
    this.fallback = new MemoryRoutingState(Date.now, { prefixEntries: this.prefixEntries });
    if (!("sputnikFleetRead" in redis)) {
      redis.defineCommand("sputnikFleetRead", { lua: READ });
      redis.defineCommand("sputnikFleetClaim", { numberOfKeys: 4, lua: CLAIM });
      redis.defineCommand("sputnikFleetRenew", { numberOfKeys: 1, lua: RENEW });
    }
    this.renewer = setInterval(() => void this.renew(), Math.max(250, Math.floor(options.leaseMs / 3)));
    this.renewer.unref();
  }

  async read(model: string, key: string | null, replicas: string[], prefixes: string[] = []): Promise<ReadResult> {
    const asked = this.prefixEntries > 0 ? prefixes : [];
    const keys = [this.affinityKey(model, key ?? ""), this.indexKey(model, "px"), this.indexKey(model, "pxlru"), ...replicas.map((r) => this.inFlightKey(model, r))];
    try {
      const out = (await this.command("sputnikFleetRead")(keys.length, ...keys, key === null ? "0" : "1", this.prefixTtlMs, asked.length, ...asked)) as [
        string,
        string,
        number,
        ...number[],
      ];
      const result: ReadResult = { remembered: out[0] === "" ? null : out[0], loads: out.slice(3).map(Number) };
      if (out[1] !== "") result.prefix = { replica: out[1], rank: Number(out[2]) };
      return result;
    } catch (error) {
      this.warn(error);
      return this.fallback.readNow(model, key, replicas, asked);
    }
  }

  async claim(model: string, key: string | null, replica: string, ttlMs: number, prefixes: string[] = []): Promise<Lease> {
    const zset = this.inFlightKey(model, replica);
    const member = `${this.gateway}:${++this.sequence}`;
    try {
      await this.command("sputnikFleetClaim")(
        zset,
        this.affinityKey(model, key ?? ""),
        this.indexKey(model, "px"),
        this.indexKey(model, "pxlru"),
        member,
        this.options.leaseMs,
        replica,
        ttlMs,
        key === null ? "0" : "1",
        this.prefixEntries,
        prefixes.length,
        ...[...prefixes].reverse(),
      );
    } catch (error) {
      this.warn(error);
      return this.fallback.claimNow(model, key, replica, ttlMs, prefixes);
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

  private indexKey(model: string, name: "px" | "pxlru"): string {
    return `${this.options.prefix}{${model}}:${name}`;
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

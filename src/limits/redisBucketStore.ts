import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { MemoryBucketStore, outcomeOf, type BucketMode, type BucketOutcome, type BucketRule, type BucketStore } from "./tokenBucket.ts";

/**
 * `applyBucket` as one atomic Lua script, so every Sputnik process sharing this Redis draws from
 * the same balance. It reads Redis's own clock: processes on machines with skewed clocks still agree.
 * The key expires once the bucket would be full again, so idle clients cost no memory.
 */
const SCRIPT = `
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local mode = ARGV[4]
local rate = capacity / window
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1])
local at = tonumber(saved[2])
if tokens == nil or at == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
end
local allowed = 1
if mode == 'take' then
  local need = math.min(cost, capacity)
  if tokens >= need and tokens > 0 then tokens = tokens - need else allowed = 0 end
else
  tokens = math.max(-capacity, tokens - cost)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(0, capacity - tokens) / rate) + 1000)
return { allowed, tostring(tokens) }
`;

type BucketCommand = (key: string, capacity: number, windowMs: number, cost: number, mode: BucketMode) => Promise<[number, string]>;

export class RedisBucketStore implements BucketStore {
  private readonly fallback = new MemoryBucketStore();
  private lastWarning = 0;

  constructor(
    private readonly redis: Redis,
    private readonly options: { prefix?: string; logger?: Logger } = {},
  ) {
    if (!("sputnikBucket" in redis)) {
      redis.defineCommand("sputnikBucket", { numberOfKeys: 1, lua: SCRIPT });
    }
  }

  take(key: string, cost: number, rule: BucketRule): Promise<BucketOutcome> {
    return this.apply(key, cost, rule, "take");
  }

  debit(key: string, cost: number, rule: BucketRule): Promise<BucketOutcome> {
    return this.apply(key, cost, rule, "debit");
  }

  /** The Redis connection belongs to whoever created it; only the fallback is ours to close. */
  async close(): Promise<void> {
    await this.fallback.close();
  }

  private async apply(key: string, cost: number, rule: BucketRule, mode: BucketMode): Promise<BucketOutcome> {
    const command = (this.redis as unknown as { sputnikBucket: BucketCommand }).sputnikBucket;
    try {
      const [allowed, tokens] = await command.call(this.redis, `${this.options.prefix ?? "sputnik:rl:"}${key}`, rule.capacity, rule.windowMs, cost, mode);
      return outcomeOf(Number(tokens), allowed === 1, cost, rule);
    } catch (error) {
      // Limits keep working while Redis is away, per process, rather than failing every request.
      const now = Date.now();
      if (now - this.lastWarning > 30_000) {
        this.lastWarning = now;
        this.options.logger?.warn({ err: error }, "Redis unreachable: rate limits are enforced per process until it is back");
      }
      return mode === "take" ? this.fallback.take(key, cost, rule) : this.fallback.debit(key, cost, rule);
    }
  }
}

import type { LimitsConfig } from "./config.ts";

/**
 * The limits in force: as configured, or tightened by the configured factors while attack mode is
 * on. A limit that is off (0) stays off; one that is on never drops below 1.
 */
export function limitsInForce(config: LimitsConfig, attack: boolean): LimitsConfig {
  if (!attack) return config;
  const { rateFactor, queueFactor, concurrencyFactor } = config.attackMode;
  const rate = (n: number) => scale(n, rateFactor);
  const rateOpt = (n: number | undefined) => (n === undefined ? undefined : rate(n));
  return {
    ...config,
    perKey: { requestsPerMinute: rate(config.perKey.requestsPerMinute), tokensPerMinute: rate(config.perKey.tokensPerMinute) },
    perUser: { requestsPerMinute: rate(config.perUser.requestsPerMinute), tokensPerMinute: rate(config.perUser.tokensPerMinute) },
    perIp: { requestsPerMinute: rate(config.perIp.requestsPerMinute), tokensPerMinute: rate(config.perIp.tokensPerMinute) },
    authPerIpPerMinute: rate(config.authPerIpPerMinute),
    httpPerIpPerMinute: rate(config.httpPerIpPerMinute),
    tiers: Object.fromEntries(
      Object.entries(config.tiers).map(([id, tier]) => [
        id,
        {
          ...tier,
          requestsPerMinute: rateOpt(tier.requestsPerMinute),
          tokensPerMinute: rateOpt(tier.tokensPerMinute),
          totalRequestsPerMinute: rate(tier.totalRequestsPerMinute),
          totalTokensPerMinute: rate(tier.totalTokensPerMinute),
        },
      ]),
    ),
    queue: {
      ...config.queue,
      maxLength: scale(config.queue.maxLength, queueFactor),
      maxPerUser: scale(config.queue.maxPerUser, queueFactor),
      maxWaitMs: scale(config.queue.maxWaitMs, queueFactor),
    },
    maxConcurrentPerIp: scale(config.maxConcurrentPerIp, concurrencyFactor),
    maxConcurrentPerKey: scale(config.maxConcurrentPerKey, concurrencyFactor),
  };
}

function scale(value: number, factor: number): number {
  return value === 0 ? 0 : Math.max(1, Math.floor(value * factor));
}

/**
 * Asks whether attack mode is on at most once per `ttlMs`: the answer lives in the database and
 * is needed on every request. A failing lookup keeps the last answer (and is retried next time).
 */
export function cachedAttackMode(lookup: () => Promise<boolean>, ttlMs = 1000): () => Promise<boolean> {
  let value = false;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let pending: Promise<boolean> | null = null;
  return async () => {
    if (performance.now() - fetchedAt < ttlMs) return value;
    pending ??= lookup()
      .then((fresh) => {
        value = fresh;
        fetchedAt = performance.now();
        return fresh;
      })
      .catch(() => value)
      .finally(() => (pending = null));
    return pending;
  };
}

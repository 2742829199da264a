import { ServiceError } from "../errors.ts";
import type { LimitsConfig } from "./config.ts";
import type { Identity } from "./identity.ts";
import type { BucketOutcome, BucketRule, BucketStore } from "./tokenBucket.ts";

const MINUTE = 60_000;

/** Why a request was refused by a rate limit (a metrics label and the error's `code`). */
export type RateRejection = "rate_limit_requests" | "rate_limit_tokens" | "rate_limit_auth" | "rate_limit_ip";

/** Buckets keyed by a client IP alone, for code outside the completion path. */
export type IpBucket = "auth-ip" | "http-ip";

interface AppliedBucket {
  key: string;
  rule: BucketRule;
  kind: "requests" | "tokens";
  /** Names the subject in an error message. */
  subject: string;
}

export interface RateVerdict {
  /** x-ratelimit-* headers for the response. */
  headers: Record<string, string>;
}

/**
 * Requests and tokens per minute per API key, per user (with per-plan rates), per plan (one shared
 * bucket) and per client IP for requests without an account. A completion takes one request from
 * each of its buckets and needs every token bucket out of debt; its real token count is charged
 * when it ends (`chargeTokens`).
 */
export class RateLimits {
  constructor(
    private readonly store: BucketStore,
    private readonly onRejected: (reason: RateRejection) => void = () => undefined,
  ) {}

  /** Throws ServiceError rate_limited (retryAfterS; x-ratelimit-* in meta) when any bucket of `identity` is empty. */
  async admitCompletion(identity: Identity, limits: LimitsConfig): Promise<RateVerdict> {
    const buckets = bucketsOf(identity, limits);
    const outcomes = await Promise.all(buckets.map((b) => this.store.take(b.key, b.kind === "requests" ? 1 : 0, b.rule)));
    const headers = rateHeaders(buckets, outcomes);
    const refusedAt = outcomes.findIndex((o) => !o.allowed);
    if (refusedAt < 0) return { headers };
    const bucket = buckets[refusedAt]!;
    const retryAfterMs = Math.max(...outcomes.filter((o) => !o.allowed).map((o) => o.retryAfterMs));
    const reason: RateRejection = bucket.kind === "requests" ? "rate_limit_requests" : "rate_limit_tokens";
    this.onRejected(reason);
    const what = bucket.kind === "requests" ? `${bucket.rule.capacity} requests per minute` : `${bucket.rule.capacity} tokens per minute`;
    throw new ServiceError("rate_limited", `Rate limit reached for ${bucket.subject}: ${what}. Please retry after ${seconds(retryAfterMs)} s.`, {
      code: reason,
      retryAfterS: seconds(retryAfterMs),
      meta: headers,
    });
  }

  /** Charges a finished completion's tokens to the token buckets it was admitted under. */
  async chargeTokens(identity: Identity, limits: LimitsConfig, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    const buckets = bucketsOf(identity, limits).filter((b) => b.kind === "tokens");
    await Promise.all(buckets.map((b) => this.store.debit(b.key, tokens, b.rule)));
  }

  /**
   * One attempt against a per-IP bucket: "auth-ip" for login, sign-up and code redemption,
   * "http-ip" for any request. Throws ServiceError rate_limited (retryAfterS) when the IP is over its rate.
   */
  async consumeIp(bucket: IpBucket, ip: string, limits: LimitsConfig): Promise<RateVerdict> {
    const perMinute = bucket === "auth-ip" ? limits.authPerIpPerMinute : limits.httpPerIpPerMinute;
    if (perMinute === 0) return { headers: {} };
    const rule = { capacity: perMinute, windowMs: MINUTE };
    const outcome = await this.store.take(`${bucket}:${ip}`, 1, rule);
    const headers = {
      "x-ratelimit-limit": String(outcome.limit),
      "x-ratelimit-remaining": String(outcome.remaining),
      "x-ratelimit-reset": String(Math.ceil(outcome.resetMs / 1000)),
    };
    if (outcome.allowed) return { headers };
    const reason: RateRejection = bucket === "auth-ip" ? "rate_limit_auth" : "rate_limit_ip";
    this.onRejected(reason);
    const what = bucket === "auth-ip" ? "sign-in attempts" : "requests";
    throw new ServiceError("rate_limited", `Too many ${what} from your address (${perMinute} per minute). Please retry after ${seconds(outcome.retryAfterMs)} s.`, {
      code: reason,
      retryAfterS: seconds(outcome.retryAfterMs),
      meta: headers,
    });
  }
}

function bucketsOf(identity: Identity, limits: LimitsConfig): AppliedBucket[] {
  const out: AppliedBucket[] = [];
  const add = (scope: string, id: string, requests: number, tokens: number, subject: string) => {
    if (requests > 0) out.push({ key: `req:${scope}:${id}`, rule: { capacity: requests, windowMs: MINUTE }, kind: "requests", subject });
    if (tokens > 0) out.push({ key: `tok:${scope}:${id}`, rule: { capacity: tokens, windowMs: MINUTE }, kind: "tokens", subject });
  };
  if (identity.userId === null) {
    add("ip", identity.ip, limits.perIp.requestsPerMinute, limits.perIp.tokensPerMinute, "your address");
    return out;
  }
  if (identity.apiKeyId !== null) {
    add("key", identity.apiKeyId, limits.perKey.requestsPerMinute, limits.perKey.tokensPerMinute, "this API key");
  }
  const tier = identity.planId !== null ? limits.tiers[identity.planId] : undefined;
  add(
    "user",
    identity.userId,
    tier?.requestsPerMinute ?? limits.perUser.requestsPerMinute,
    tier?.tokensPerMinute ?? limits.perUser.tokensPerMinute,
    "your account",
  );
  if (tier && identity.planId !== null) {
    add("tier", identity.planId, tier.totalRequestsPerMinute, tier.totalTokensPerMinute, `the ${identity.planId} plan`);
  }
  return out;
}

/**
 * OpenAI's names (`x-ratelimit-*-requests`, `-tokens`) for the tightest bucket of each kind, and
 * the plain `x-ratelimit-limit/remaining/reset` for the tightest request bucket. Reset is in seconds.
 */
function rateHeaders(buckets: AppliedBucket[], outcomes: BucketOutcome[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const kind of ["requests", "tokens"] as const) {
    let tightest: BucketOutcome | undefined;
    buckets.forEach((b, i) => {
      const o = outcomes[i]!;
      if (b.kind === kind && (!tightest || o.remaining / o.limit < tightest.remaining / tightest.limit)) tightest = o;
    });
    if (!tightest) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(tightest.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(tightest.remaining);
    headers[`x-ratelimit-reset-${kind}`] = `${Math.ceil(tightest.resetMs / 1000)}s`;
    if (kind === "requests") {
      headers["x-ratelimit-limit"] = String(tightest.limit);
      headers["x-ratelimit-remaining"] = String(tightest.remaining);
      headers["x-ratelimit-reset"] = String(Math.ceil(tightest.resetMs / 1000));
    }
  }
  return headers;
}

/** Retry-after: whole seconds, at least 1. */
function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

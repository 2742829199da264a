import { sql, type Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { sha256Hex } from "./secrets.ts";

/**
 * Growing delays after repeated failures (wrong passwords, wrong access codes): the first
 * `freeFailures` cost nothing, then each further failure blocks the key for twice as long as the
 * last, up to `maxDelayMs`. A quiet spell of `resetAfterMs` since the last failure forgives all.
 */
export interface ThrottleRule {
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  resetAfterMs: number;
}

const MINUTE = 60_000;

/**
 * Sign-in throttling is layered so that no layer can be turned against an account's owner
 * (OWASP: lockout must not become a denial of service). See src/auth/loginThrottle.ts.
 */
/** Per client address, whatever the account: room for a household behind one NAT, not for a password sprayer. */
export const LOGIN_IP_RULE: ThrottleRule = { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE, resetAfterMs: 60 * MINUTE };
/** Per (account, client address): one address guessing one account is stopped quickly; the owner elsewhere is untouched. */
export const LOGIN_ACCOUNT_IP_RULE: ThrottleRule = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE, resetAfterMs: 60 * MINUTE };
/**
 * Per account, for devices the account has not remembered, from any address: slows guessing spread
 * over many addresses to about one guess a minute. The cap is short on purpose: an attacker can
 * only ever make the owner on a new device wait a minute, and attempts refused during a block are
 * not failures, so hammering does not lengthen it. Remembered devices are exempt.
 */
export const LOGIN_ACCOUNT_RULE: ThrottleRule = { freeFailures: 10, baseDelayMs: 1000, maxDelayMs: MINUTE, resetAfterMs: 60 * MINUTE };
/** Per remembered device: a stolen device cookie used for guessing loses its exemption. */
export const LOGIN_DEVICE_RULE: ThrottleRule = { freeFailures: 10, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE, resetAfterMs: 60 * MINUTE };
/**
 * Second-factor codes (src/auth/loginThrottle.ts, SECOND_FACTOR_THROTTLE): the same four counters as
 * passwords, but the per-account one caps at 15 minutes, not one: a six-digit code is a million
 * guesses with three right at any moment, where a password is a search without end, and only
 * someone who already has the password gets to guess. The owner's remembered devices are still
 * exempt from it, so the owner is not kept out.
 */
export const SECOND_FACTOR_ACCOUNT_RULE: ThrottleRule = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * MINUTE, resetAfterMs: 60 * MINUTE };
/** Wrong access codes per client address. */
export const CODE_IP_RULE: ThrottleRule = { freeFailures: 5, baseDelayMs: 2000, maxDelayMs: 30 * MINUTE, resetAfterMs: 60 * MINUTE };
/** Wrong access codes sharing a prefix, from anywhere: guessing the rest of a known prefix is slow. */
export const CODE_PREFIX_RULE: ThrottleRule = { freeFailures: 3, baseDelayMs: 2000, maxDelayMs: 30 * MINUTE, resetAfterMs: 60 * MINUTE };

/** Failure counters in the database, so every replica and every restart sees the same state. */
export class Throttle {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly rule: ThrottleRule,
    private readonly namespace: string,
  ) {}

  /** How long `key` must still wait, in ms (0: go ahead). */
  async waitMs(key: string, now: number = Date.now()): Promise<number> {
    const row = await this.db.selectFrom("auth_throttle").select("blocked_until").where("key", "=", this.rowKey(key)).executeTakeFirst();
    return row ? Math.max(0, row.blocked_until - now) : 0;
  }

  /** Counts one failure; returns how long `key` is now blocked, in ms (0: not yet). */
  async recordFailure(key: string, now: number = Date.now()): Promise<number> {
    const rowKey = this.rowKey(key);
    // One atomic upsert counts the failure, so concurrent failures are all counted.
    const { failures } = await this.db
      .insertInto("auth_throttle")
      .values({ key: rowKey, failures: 1, last_failure_at: now, blocked_until: 0 })
      .onConflict((oc) =>
        oc.column("key").doUpdateSet({
          failures: sql<number>`case when ${sql.ref("auth_throttle.last_failure_at")} < ${now - this.rule.resetAfterMs} then 1 else ${sql.ref("auth_throttle.failures")} + 1 end`,
          last_failure_at: now,
        }),
      )
      .returning("failures")
      .executeTakeFirstOrThrow();
    const delay = delayFor(this.rule, failures);
    if (delay > 0) {
      const until = now + delay;
      // Only ever extend a block: a slower concurrent writer must not shorten it.
      await this.db
        .updateTable("auth_throttle")
        .set({ blocked_until: sql<number>`case when blocked_until < ${until} then ${until} else blocked_until end` })
        .where("key", "=", rowKey)
        .execute();
    }
    return delay;
  }

  /** Forgets `key`'s failures; true when there were any. */
  async reset(key: string): Promise<boolean> {
    const result = await this.db.deleteFrom("auth_throttle").where("key", "=", this.rowKey(key)).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Deletes every counter of every throttle whose namespace starts with `namespacePrefix`; returns how many. */
  static async clearNamespace(db: Kysely<Database>, namespacePrefix: string): Promise<number> {
    // Namespaces are made of hex digits, letters, '-' and ':' only: nothing LIKE would read as a wildcard.
    if (!/^[a-z0-9:-]+$/i.test(namespacePrefix)) throw new RangeError(`bad throttle namespace ${namespacePrefix}`);
    const result = await db.deleteFrom("auth_throttle").where("key", "like", `${namespacePrefix}%`).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Drops counters that can no longer block anyone. */
  static async prune(db: Kysely<Database>, olderThanMs: number, now: number = Date.now()): Promise<void> {
    await db.deleteFrom("auth_throttle").where("last_failure_at", "<", now - olderThanMs).where("blocked_until", "<", now).execute();
  }

  // Hashed: people type passwords into the user name field, and the table must not keep them.
  private rowKey(key: string): string {
    return `${this.namespace}:${sha256Hex(key)}`;
  }
}

export function delayFor(rule: ThrottleRule, failures: number): number {
  const over = failures - rule.freeFailures;
  if (over <= 0) return 0;
  return Math.min(rule.maxDelayMs, rule.baseDelayMs * 2 ** Math.min(over - 1, 30));
}

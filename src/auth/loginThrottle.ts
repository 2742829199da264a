import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import type { RememberedDevice } from "./rememberedDevices.ts";
import { sha256Hex } from "./secrets.ts";
import { LOGIN_ACCOUNT_IP_RULE, LOGIN_ACCOUNT_RULE, LOGIN_DEVICE_RULE, LOGIN_IP_RULE, SECOND_FACTOR_ACCOUNT_RULE, Throttle, type ThrottleRule } from "./throttle.ts";

/**
 * Sign-in throttling that cannot be turned against an account's owner (OWASP "Blocking Brute Force
 * Attacks" with device cookies). Four counters, each with growing delays after free failures:
 *
 * | counter | blocks | who it stops |
 * |---|---|---|
 * | per address | every sign-in from it (not remembered devices) | one address spraying many accounts |
 * | per (account, address) | that address for that account | one address guessing one account |
 * | per account | devices the account has not remembered, from anywhere; capped at a minute | guessing spread over many addresses |
 * | per remembered device | that device's exemption | a stolen device cookie used for guessing |
 *
 * A device the account remembers (src/auth/rememberedDevices.ts) answers only to its own
 * (account, address) counter, so strangers failing against the account from other addresses can
 * never keep its owner out; an owner on a new device is at most slowed by a minute at a time.
 * While a counter blocks, even the right password is refused (the block must not test guesses),
 * and refused attempts are not failures, so hammering a blocked account does not lengthen its block.
 *
 * `account` is `user:<id>` for an existing account and `name:<login>` otherwise: unknown names get
 * exactly the same treatment, so the answers do not tell whether an account exists.
 */
export interface LoginAttempt {
  account: string;
  ip: string;
  /** The remembered device this browser proved, for this account; null for any other device. */
  device: RememberedDevice | null;
}

/** The rules of the four counters, and the prefix that keeps one secret's counters apart from another's. */
export interface LoginThrottleRules {
  prefix: string;
  ip: ThrottleRule;
  accountIp: ThrottleRule;
  account: ThrottleRule;
  device: ThrottleRule;
}

/** Passwords (the sign-in form, and re-typing the current password to change security settings). */
export const PASSWORD_THROTTLE: LoginThrottleRules = { prefix: "login", ip: LOGIN_IP_RULE, accountIp: LOGIN_ACCOUNT_IP_RULE, account: LOGIN_ACCOUNT_RULE, device: LOGIN_DEVICE_RULE };
/** Second-factor codes and recovery codes at sign-in: counters of their own, a longer per-account cap (see throttle.ts). */
export const SECOND_FACTOR_THROTTLE: LoginThrottleRules = {
  prefix: "second-factor",
  ip: LOGIN_IP_RULE,
  accountIp: LOGIN_ACCOUNT_IP_RULE,
  account: SECOND_FACTOR_ACCOUNT_RULE,
  device: LOGIN_DEVICE_RULE,
};

export class LoginThrottle {
  private readonly byIp: Throttle;
  private readonly byAccount: Throttle;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly rules: LoginThrottleRules = PASSWORD_THROTTLE,
  ) {
    this.byIp = new Throttle(db, rules.ip, `${rules.prefix}-ip`);
    this.byAccount = new Throttle(db, rules.account, `${rules.prefix}-account`);
  }

  /** The account key for a login: the user's id when it exists, the name as typed otherwise. */
  static accountKey(userId: string | null, login: string): string {
    return userId ? `user:${userId}` : `name:${login.trim().toLowerCase()}`;
  }

  /**
   * Judges an attempt before its password is checked: how long it must still wait, in ms (0: go
   * ahead), and the attempt as the throttle sees it (a device caught guessing is just a device), to
   * pass to `failed` or `succeeded`.
   */
  async check(attempt: LoginAttempt, now: number = Date.now()): Promise<{ waitMs: number; attempt: LoginAttempt }> {
    const pair = await this.byPair(attempt.account).waitMs(attempt.ip, now);
    if (attempt.device && (await this.byDevice(attempt.account).waitMs(attempt.device.deviceId, now)) === 0) {
      return { waitMs: pair, attempt };
    }
    const [ip, account] = [await this.byIp.waitMs(attempt.ip, now), await this.byAccount.waitMs(attempt.account, now)];
    return { waitMs: Math.max(pair, ip, account), attempt: { ...attempt, device: null } };
  }

  /** Counts a wrong password (or unknown account). */
  async failed(attempt: LoginAttempt, now: number = Date.now()): Promise<void> {
    await this.byPair(attempt.account).recordFailure(attempt.ip, now);
    await this.byIp.recordFailure(attempt.ip, now);
    // A remembered device's failures are its own: they never slow the account for anyone else.
    if (attempt.device) await this.byDevice(attempt.account).recordFailure(attempt.device.deviceId, now);
    else await this.byAccount.recordFailure(attempt.account, now);
  }

  /**
   * The right password: the (account, address) and device counters start over. The per-account
   * counter does not: an attacker must not win fresh free guesses whenever the owner signs in.
   */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    await this.byPair(attempt.account).reset(attempt.ip);
    if (attempt.device) await this.byDevice(attempt.account).reset(attempt.device.deviceId);
  }

  private byPair(account: string): Throttle {
    return new Throttle(this.db, this.rules.accountIp, pairNamespace(this.rules.prefix, account));
  }

  private byDevice(account: string): Throttle {
    return new Throttle(this.db, this.rules.device, deviceNamespace(this.rules.prefix, account));
  }
}

// Per-account namespaces, so that one account's counters can be found (and cleared) together
// without storing the account or the address in clear.
function pairNamespace(prefix: string, account: string): string {
  return `${prefix}-pair:${sha256Hex(account).slice(0, 32)}`;
}

function deviceNamespace(prefix: string, account: string): string {
  return `${prefix}-device:${sha256Hex(account).slice(0, 32)}`;
}

/**
 * Clears every sign-in counter of an account (per account, per (account, address), per device):
 * `sputnik admin unlock-user`. Returns how many counters were cleared. Per-address counters stay:
 * they belong to the addresses, not to the account.
 */
export async function clearLoginThrottle(db: Kysely<Database>, userId: string): Promise<number> {
  const account = LoginThrottle.accountKey(userId, "");
  let cleared = 0;
  // Password and second-factor counters alike.
  for (const rules of [PASSWORD_THROTTLE, SECOND_FACTOR_THROTTLE]) {
    cleared += (await new Throttle(db, rules.account, `${rules.prefix}-account`).reset(account)) ? 1 : 0;
    cleared += await Throttle.clearNamespace(db, `${pairNamespace(rules.prefix, account)}:`);
    cleared += await Throttle.clearNamespace(db, `${deviceNamespace(rules.prefix, account)}:`);
  }
  return cleared;
}

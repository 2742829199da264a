import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { hmacHex, safeEqual, serviceSecret } from "./secrets.ts";

/**
 * Remembered devices (OWASP's "device cookies"): after a successful sign-in the browser gets an
 * httpOnly cookie saying "this device signed in to account X", signed with a key derived from the
 * service secret. A later sign-in to X from a device that shows it is exempt from the per-account
 * throttle (src/auth/loginThrottle.ts), so strangers hammering X from elsewhere cannot keep its owner
 * out. Nothing is stored server-side; a token is good for `DEVICE_TOKEN_DAYS`, and one used for
 * guessing loses its exemption through its own throttle counter.
 *
 * The cookie holds up to `MAX_DEVICE_TOKENS` tokens (people who share a browser), each
 * `<userId>.<deviceId>.<issuedAt>.<mac>`.
 */
export const DEVICE_COOKIE = "sputnik_device";
/** Sent only with sign-in requests: no other route needs it. */
export const DEVICE_COOKIE_PATH = "/api/auth/login";
export const DEVICE_TOKEN_DAYS = 365;
const DAY_MS = 86_400_000;
const MAX_DEVICE_TOKENS = 5;
const TOKEN = /^([0-9a-f-]{1,64})\.([A-Za-z0-9_-]{22})\.(\d{1,15})\.([0-9a-f]{64})$/;

export interface RememberedDevice {
  userId: string;
  /** Random, per device and sign-in: the key of the device's own throttle counter. */
  deviceId: string;
  issuedAt: number;
}

export class RememberedDevices {
  constructor(private readonly key: string) {}

  /** A new token for `userId`. */
  issue(userId: string, now: number = Date.now()): string {
    const deviceId = randomBytes(16).toString("base64url");
    return `${userId}.${deviceId}.${now}.${this.mac(userId, deviceId, now)}`;
  }

  /** The valid, unexpired token for `userId` in a cookie value, if there is one. */
  find(cookieValue: string | null | undefined, userId: string, now: number = Date.now()): RememberedDevice | null {
    for (const token of splitTokens(cookieValue)) {
      const m = TOKEN.exec(token);
      if (!m || m[1] !== userId) continue;
      const issuedAt = Number(m[3]);
      if (issuedAt > now + 60_000 || now - issuedAt > DEVICE_TOKEN_DAYS * DAY_MS) continue;
      if (safeEqual(m[4]!, this.mac(userId, m[2]!, issuedAt))) return { userId, deviceId: m[2]!, issuedAt };
    }
    return null;
  }

  /** The cookie value with `token` (for `userId`) first, replacing that account's older one. */
  add(cookieValue: string | null | undefined, token: string, userId: string): string {
    const others = splitTokens(cookieValue).filter((t) => TOKEN.test(t) && !t.startsWith(`${userId}.`));
    return [token, ...others].slice(0, MAX_DEVICE_TOKENS).join("~");
  }

  private mac(userId: string, deviceId: string, issuedAt: number): string {
    return hmacHex(this.key, `device:${userId}:${deviceId}:${issuedAt}`);
  }
}

function splitTokens(cookieValue: string | null | undefined): string[] {
  if (!cookieValue || cookieValue.length > 2048) return [];
  return cookieValue.split("~").slice(0, MAX_DEVICE_TOKENS);
}

const cache = new WeakMap<object, Promise<RememberedDevices>>();

/** The RememberedDevices of this install (its key comes from the service secret, shared by replicas). */
export function rememberedDevicesFor(db: Kysely<Database>): Promise<RememberedDevices> {
  let found = cache.get(db);
  if (!found) {
    // A key of its own, so a device token can never be mistaken for a CSRF token or the like.
    found = serviceSecret(db).then((secret) => new RememberedDevices(hmacHex(secret, "remembered-device-key")));
    found.catch(() => cache.delete(db));
    cache.set(db, found);
  }
  return found;
}

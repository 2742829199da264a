import { ServiceError } from "../errors.ts";
import type { Identity } from "./identity.ts";

export type ConcurrencyRejection = "concurrency_ip" | "concurrency_key";

/**
 * Caps on completions open at once (waiting or running) per client IP and per API key, so one
 * address or one leaked key cannot hold the whole queue. Counted per process: each Sputnik
 * process guards its own sockets and queue.
 */
export class ConcurrencyCaps {
  private readonly open = new Map<string, number>();

  constructor(private readonly onRejected: (reason: ConcurrencyRejection) => void = () => undefined) {}

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /**
   * Takes one place for `identity` under both caps (0 = no cap) and returns its release, which
   * may be called more than once. Throws ServiceError rate_limited (retryAfterS) when a cap is reached.
   */
  acquire(identity: Identity, caps: { perIp: number; perKey: number }, retryAfterS: number): () => void {
    const keys: string[] = [];
    const ipKey = `ip:${identity.ip}`;
    if (caps.perIp > 0) {
      if (this.count(ipKey) >= caps.perIp) {
        throw this.refuse("concurrency_ip", `Too many requests open at once from your address (limit ${caps.perIp}); wait for one to finish.`, retryAfterS);
      }
      keys.push(ipKey);
    }
    if (caps.perKey > 0 && identity.apiKeyId !== null) {
      const keyKey = `key:${identity.apiKeyId}`;
      if (this.count(keyKey) >= caps.perKey) {
        throw this.refuse("concurrency_key", `Too many requests open at once with this API key (limit ${caps.perKey}); wait for one to finish.`, retryAfterS);
      }
      keys.push(keyKey);
    }
    for (const key of keys) this.open.set(key, this.count(key) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of keys) {
        const left = this.count(key) - 1;
        if (left > 0) this.open.set(key, left);
        else this.open.delete(key);
      }
    };
  }

  private refuse(reason: ConcurrencyRejection, message: string, retryAfterS: number): ServiceError {
    this.onRejected(reason);
    return new ServiceError("rate_limited", message, { code: reason, retryAfterS: Math.max(1, Math.ceil(retryAfterS)) });
  }
}

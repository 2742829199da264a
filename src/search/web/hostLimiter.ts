/**
 * Politeness: at most N connections at a time to one host, across every search in this process.
 * Waiters queue in order; a waiter whose signal aborts leaves the queue. Hosts with nobody
 * connected or waiting are forgotten, so the map only holds hosts in use.
 */
interface HostState {
  active: number;
  waiting: Array<{ grant: () => void }>;
}

export class HostLimiter {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly perHost: number) {}

  /** Resolves with a release function once a slot for `host` is free. */
  async acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let state = this.hosts.get(host);
    if (!state) {
      state = { active: 0, waiting: [] };
      this.hosts.set(host, state);
    }
    if (state.active < this.perHost) {
      state.active++;
      return this.releaser(host, state);
    }
    const current = state;
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const at = current.waiting.indexOf(waiter);
        if (at >= 0) current.waiting.splice(at, 1);
        this.forgetIfIdle(host, current);
        reject(signal!.reason);
      };
      current.waiting.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    return this.releaser(host, current); // the slot was handed over by the releaser: `active` already counts it
  }

  /** Connections in use for `host` (for tests and metrics). */
  active(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }

  private releaser(host: string, state: HostState): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = state.waiting.shift();
      if (next) next.grant(); // hand the slot over as is
      else {
        state.active--;
        this.forgetIfIdle(host, state);
      }
    };
  }

  private forgetIfIdle(host: string, state: HostState): void {
    if (state.active === 0 && state.waiting.length === 0 && this.hosts.get(host) === state) this.hosts.delete(host);
  }
}

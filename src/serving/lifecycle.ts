/**
 * Where the service is in its life, for the probes an orchestrator asks (Kubernetes' `/readyz`
 * and `/livez`), the shutdown gate and `/metrics`:
 *
 *   starting   the process runs, models are still loading: alive, not ready
 *   ready      models loaded, HTTP listening: takes traffic
 *   draining   SIGTERM came: not ready (the load balancer stops sending), new requests and the
 *              queue are refused with 503 + Retry-After, running answers finish up to
 *              `shutdownTimeoutMs`; still alive, so the orchestrator does not kill it early
 *
 * A plain state holder with no imports, so the HTTP layer and the runtime can share it.
 */
export type LifecycleState = "starting" | "ready" | "draining";

export class Lifecycle {
  private current: LifecycleState;
  private drainStartedAt: number | null = null;

  constructor(initial: LifecycleState = "starting") {
    this.current = initial;
  }

  get state(): LifecycleState {
    return this.current;
  }

  /** Models are loaded and the server listens: readiness turns true (unless already draining). */
  markReady(): void {
    if (this.current === "starting") this.current = "ready";
  }

  /** Readiness turns false for good. Returns false when the drain had already begun. */
  beginDrain(now = Date.now()): boolean {
    if (this.current === "draining") return false;
    this.current = "draining";
    this.drainStartedAt = now;
    return true;
  }

  get ready(): boolean {
    return this.current === "ready";
  }

  get draining(): boolean {
    return this.current === "draining";
  }

  /** When the drain began (ms since the epoch), or null. */
  get drainingSince(): number | null {
    return this.drainStartedAt;
  }
}

/**
 * One replica's health as a gateway sees it: the last active probe plus a circuit breaker fed by
 * real requests. A replica is in rotation while its probe is not `down` and its breaker is closed.
 *
 *   closed ──N consecutive failures──▶ open ──cool-down──▶ half_open ──probe ok──▶ closed
 *                                        ▲                     │
 *                                        └──── probe fails ────┘
 *
 * The half-open trial is the active probe rather than a user's request, so no user is sent to a
 * replica that is probably still dead. A failed probe takes the replica out at once (a refused
 * health check is a stronger signal than one failed request); a passing one brings it back at once.
 */
export class ReplicaHealth {
  probe: "unknown" | "up" | "down" = "unknown";
  private state: "closed" | "open" = "closed";
  private openedAt = 0;
  consecutiveFailures = 0;
  lastError: string | null = null;

  constructor(
    private readonly options: { failureThreshold: number; cooldownMs: number },
    private readonly now: () => number = () => performance.now(),
  ) {}

  get breaker(): "closed" | "open" | "half_open" {
    if (this.state === "closed") return "closed";
    return this.now() - this.openedAt >= this.options.cooldownMs ? "half_open" : "open";
  }

  inRotation(): boolean {
    return this.probe !== "down" && this.breaker === "closed";
  }

  /** When the breaker may next be tried (ms on this clock), or null when it is closed. */
  halfOpensAt(): number | null {
    return this.state === "open" ? this.openedAt + this.options.cooldownMs : null;
  }

  /** The replica answered a request (2xx headers, or a 4xx that is the client's): it is alive. */
  recordSuccess(): void {
    this.consecutiveFailures = 0;
  }

  /** A request failed on the replica (connect, timeout before headers, 5xx, broken stream). */
  recordFailure(reason: string): void {
    this.lastError = reason;
    this.consecutiveFailures++;
    if (this.state === "closed" && this.consecutiveFailures >= this.options.failureThreshold) this.open();
  }

  recordProbe(ok: boolean, detail: string): void {
    this.probe = ok ? "up" : "down";
    if (!ok) this.lastError = detail;
    const breaker = this.breaker;
    if (ok && breaker === "half_open") {
      this.state = "closed";
      this.consecutiveFailures = 0;
    } else if (!ok && breaker === "half_open") {
      this.open();
    }
  }

  private open(): void {
    this.state = "open";
    this.openedAt = this.now();
  }
}

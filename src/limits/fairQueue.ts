/**
 * Start-time fair queueing (Goyal et al., SFQ) over flows (one flow per user, or per IP without an
 * account). Each request is tagged with a virtual start time
 *
 *   start = max(V, lastFinish[flow]),  lastFinish[flow] = start + 1 / weight
 *
 * and the smallest start goes first (ties: the earlier arrival). V is the start tag of the request
 * dispatched last. A flow with 50 requests queued holds tags V, V+1, …, V+49; a newcomer gets V,
 * so it goes right after whatever runs now: one busy user cannot push another back by more than
 * one scheduling turn, and a weight-2 flow gets two turns per turn of a weight-1 flow.
 */
export interface FairEntry<T> {
  readonly flow: string;
  readonly value: T;
  readonly start: number;
  readonly seq: number;
}

export class FairQueue<T> {
  private entries: FairEntry<T>[] = [];
  private readonly lastFinish = new Map<string, number>();
  private readonly weights = new Map<string, number>();
  private readonly perFlow = new Map<string, number>();
  private virtualTime = 0;
  private seq = 0;

  get length(): number {
    return this.entries.length;
  }

  queuedFor(flow: string): number {
    return this.perFlow.get(flow) ?? 0;
  }

  /** The tag a request of `flow` would get now. */
  nextStart(flow: string): number {
    return Math.max(this.virtualTime, this.lastFinish.get(flow) ?? 0);
  }

  /**
   * How many queued requests would go before a new request of `flow`: those with a smaller start
   * tag, or the same one (they arrived earlier).
   */
  aheadOfNew(flow: string): number {
    const start = this.nextStart(flow);
    let ahead = 0;
    for (const entry of this.entries) if (entry.start <= start) ahead++;
    return ahead;
  }

  /**
   * How many requests will probably run before a new request of `flow`, if every flow that has
   * requests waiting keeps sending: those queued ahead of it, and the turns other waiting flows'
   * future requests will take because their tags are still below its tag. Fair queueing lets
   * lighter flows overtake a heavy flow's request, so counting only the requests queued now
   * would promise heavy users waits that turn out longer.
   */
  turnsBeforeNew(flow: string): number {
    return this.turnsBeforeTag(flow, this.nextStart(flow), Number.POSITIVE_INFINITY);
  }

  /** The same count for a request already waiting. */
  turnsBefore(entry: FairEntry<T>): number {
    return this.turnsBeforeTag(entry.flow, entry.start, entry.seq);
  }

  private turnsBeforeTag(flow: string, start: number, seq: number): number {
    let turns = 0;
    for (const e of this.entries) if (e.start < start || (e.start === start && e.seq < seq)) turns++;
    for (const other of this.perFlow.keys()) {
      if (other === flow) continue;
      // The other flow's next request would be tagged `from`, then every 1/weight after it.
      const from = Math.max(this.virtualTime, this.lastFinish.get(other) ?? 0);
      if (from < start) turns += Math.ceil((start - from) * (this.weights.get(other) ?? 1));
    }
    return turns;
  }

  push(flow: string, weight: number, value: T): FairEntry<T> {
    const entry = { flow, value, start: this.nextStart(flow), seq: this.seq++ };
    this.weights.set(flow, weight);
    this.lastFinish.set(flow, entry.start + 1 / weight);
    this.entries.push(entry);
    this.perFlow.set(flow, this.queuedFor(flow) + 1);
    return entry;
  }

  /**
   * Accounts for a request admitted without queueing (the queue was empty), so the flow's next
   * request is tagged after it.
   */
  admitDirectly(flow: string, weight: number): void {
    const start = this.nextStart(flow);
    this.weights.set(flow, weight);
    this.lastFinish.set(flow, start + 1 / weight);
    this.virtualTime = start;
  }

  /** Removes and returns the request to run next. */
  shift(): FairEntry<T> | undefined {
    if (this.entries.length === 0) return undefined;
    let best = 0;
    for (let i = 1; i < this.entries.length; i++) if (before(this.entries[i]!, this.entries[best]!)) best = i;
    const [entry] = this.entries.splice(best, 1);
    this.virtualTime = entry!.start;
    this.dropOne(entry!.flow);
    this.forgetIdleFlows();
    return entry;
  }

  /** Removes a request that left (client gone, timed out). */
  remove(entry: FairEntry<T>): boolean {
    const at = this.entries.indexOf(entry);
    if (at < 0) return false;
    this.entries.splice(at, 1);
    this.dropOne(entry.flow);
    // The flow is not charged for a request that never ran: when it was the flow's latest, the
    // flow's next request takes its tag.
    const later = this.entries.some((e) => e.flow === entry.flow && e.start > entry.start);
    if (!later) this.lastFinish.set(entry.flow, entry.start);
    return true;
  }

  /** Queued requests in the order they will run. */
  ordered(): FairEntry<T>[] {
    return [...this.entries].sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }

  private dropOne(flow: string): void {
    const left = this.queuedFor(flow) - 1;
    if (left > 0) this.perFlow.set(flow, left);
    else this.perFlow.delete(flow);
  }

  /** A finish tag at or below V no longer changes any tag: forgetting it bounds memory. */
  private forgetIdleFlows(): void {
    if (this.lastFinish.size <= 2 * this.perFlow.size + 64) return;
    for (const [flow, finish] of this.lastFinish) {
      if (finish <= this.virtualTime && !this.perFlow.has(flow)) {
        this.lastFinish.delete(flow);
        this.weights.delete(flow);
      }
    }
  }
}

function before<T>(a: FairEntry<T>, b: FairEntry<T>): boolean {
  return a.start < b.start || (a.start === b.start && a.seq < b.seq);
}

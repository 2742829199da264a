/**
 * The live events of one running reply, for whoever watches it: the tab that sent the message, a
 * reload of it, another tab. Generation does not depend on anyone watching (the reply runs on its
 * own, see conversationReplies.ts); a watcher attaches, gets where the answer is, then live events.
 *
 * Memory is bounded per reply: the channel keeps only the last `maxEvents` events (each one a few
 * tokens of text). A watcher that asks to resume after an event still in that window gets the
 * events after it; any other gets a snapshot (the text so far, built by the reply itself), then
 * live events. Both are taken in the same tick as the subscription, so nothing falls between them.
 */
export interface ChannelEntry<E> {
  /** 1, 2, …: the order events were published in. */
  seq: number;
  event: E;
}

export interface ChannelWatcher<E> {
  event(entry: ChannelEntry<E>): void;
  /** The reply ended (its last events were sent) — or the channel was dropped. */
  end(): void;
}

/** Events kept by default: far more than arrive between two reads of a watcher that keeps up. */
export const DEFAULT_CHANNEL_EVENTS = 256;

export class ReplyChannel<E> {
  private readonly recent: ChannelEntry<E>[] = [];
  /** Events after the stream's end (done/error, title): kept whole, a watcher attaching late needs them. */
  private readonly closing: ChannelEntry<E>[] = [];
  private readonly watchers = new Set<ChannelWatcher<E>>();
  private seq = 0;
  private ended = false;

  constructor(
    /** What a watcher that cannot resume sees first: the answer as it stands now. */
    private readonly snapshot: () => E,
    private readonly maxEvents = DEFAULT_CHANNEL_EVENTS,
  ) {}

  get lastSeq(): number {
    return this.seq;
  }

  get watching(): number {
    return this.watchers.size;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** How many events are held now (at most `maxEvents` plus the closing ones). */
  get buffered(): number {
    return this.recent.length + this.closing.length;
  }

  /** `final`: an event of the reply's end (kept whole, not subject to the window). */
  publish(event: E, final = false): void {
    if (this.ended) return;
    const entry = { seq: ++this.seq, event };
    if (final) this.closing.push(entry);
    else {
      this.recent.push(entry);
      if (this.recent.length > this.maxEvents) this.recent.shift();
    }
    for (const watcher of [...this.watchers]) {
      try {
        watcher.event(entry);
      } catch {
        // One watcher's broken socket must not stop the others.
        this.watchers.delete(watcher);
      }
    }
  }

  /** No more events: watchers are told, later ones get the replay and an immediate end. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const watcher of [...this.watchers]) watcher.end();
    this.watchers.clear();
  }

  /**
   * Attaches `watcher`: first the events after `after` when the window still holds them all, else
   * the snapshot (as seq `lastSeq`) and the closing events; then live events. Returns the detach.
   */
  subscribe(watcher: ChannelWatcher<E>, after?: number): () => void {
    const oldest = this.recent[0]?.seq ?? this.closing[0]?.seq ?? this.seq + 1;
    if (after !== undefined && after >= oldest - 1 && after <= this.seq) {
      for (const entry of [...this.recent, ...this.closing]) if (entry.seq > after) watcher.event(entry);
    } else {
      const closingFrom = this.closing[0]?.seq ?? this.seq + 1;
      watcher.event({ seq: closingFrom - 1, event: this.snapshot() });
      for (const entry of this.closing) watcher.event(entry);
    }
    if (this.ended) {
      watcher.end();
      return () => undefined;
    }
    this.watchers.add(watcher);
    return () => void this.watchers.delete(watcher);
  }
}

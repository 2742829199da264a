/**
 * Read pages kept for a while (a follow-up question often searches the same pages), bounded by
 * entry count and by total text size; the oldest go first. Only successful reads are kept, so a
 * refusal or a transient failure is tried afresh next time.
 */
export interface CachedPage {
  url: string;
  finalUrl: string;
  title: string | null;
  text: string;
}

interface Entry {
  page: CachedPage;
  expiresAt: number;
  size: number;
}

export class PageCache {
  private readonly entries = new Map<string, Entry>();
  private size = 0;

  constructor(
    private readonly limits: { ttlMs: number; maxEntries: number; maxChars: number },
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): CachedPage | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.remove(key, entry);
      return undefined;
    }
    return entry.page;
  }

  set(key: string, page: CachedPage): void {
    const size = page.text.length + (page.title?.length ?? 0);
    if (this.limits.ttlMs <= 0 || this.limits.maxEntries <= 0 || size > this.limits.maxChars) return;
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, { page, expiresAt: this.now() + this.limits.ttlMs, size });
    this.size += size;
    // Map iteration is insertion order: the first entries are the oldest.
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.size <= this.limits.maxChars) break;
      this.remove(oldest, entry);
    }
  }

  get stats(): { entries: number; chars: number } {
    return { entries: this.entries.size, chars: this.size };
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.size -= entry.size;
  }
}

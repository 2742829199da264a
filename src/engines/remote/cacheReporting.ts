/**
 * Whether an upstream reports prompt-cache hits, as seen from its answers: `reported` when every
 * answer carried a cache field, `none` when none did (its hits cannot be known, so every prompt
 * token is billed as a miss), `partial` when some did (a fleet whose replicas differ).
 */
export type CacheReporting = "reported" | "none" | "partial";

export class CacheReportTracker {
  private withCache = 0;
  private withoutCache = 0;

  note(reported: boolean): void {
    if (reported) this.withCache++;
    else this.withoutCache++;
  }

  /** Undefined until an answer with usage came back. */
  get state(): CacheReporting | undefined {
    if (this.withCache === 0 && this.withoutCache === 0) return undefined;
    if (this.withoutCache === 0) return "reported";
    return this.withCache === 0 ? "none" : "partial";
  }
}

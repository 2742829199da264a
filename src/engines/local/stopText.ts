/**
 * Stop sequences on streamed text (raw completions, where no chat wrapper detects them): text is
 * released as soon as it cannot be the beginning of a stop sequence; when one appears, the text
 * before it is the last released and the rest (the stop sequence included) is dropped, as OpenAI does.
 */
export class StopText {
  private pending = "";
  private stoppedAt = false;

  constructor(private readonly stops: readonly string[]) {}

  get stopped(): boolean {
    return this.stoppedAt;
  }

  /** Text safe to release after `text` arrived; after a stop, always "". */
  push(text: string): string {
    if (this.stoppedAt) return "";
    this.pending += text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stoppedAt = true;
      const out = this.pending.slice(0, cut);
      this.pending = "";
      return out;
    }
    const hold = this.heldLength();
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return out;
  }

  /** What is still held at the end of the generation (it never became a stop sequence). */
  flush(): string {
    const out = this.stoppedAt ? "" : this.pending;
    this.pending = "";
    return out;
  }

  /** The longest end of the pending text that is a proper beginning of some stop sequence. */
  private heldLength(): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, this.pending.length); n > longest; n--) {
        if (this.pending.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}

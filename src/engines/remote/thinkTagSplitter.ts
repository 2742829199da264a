/**
 * Splits `<think>…</think>` out of a streamed content channel. Some upstreams (llama-server without
 * a reasoning parser, older vLLM) put the reasoning inline in `content`; tags can arrive split
 * across chunks, so a possible tag prefix at the end of a chunk is held back until it resolves.
 */
export class ThinkTagSplitter {
  private inThink: boolean;
  private pending = "";
  private seenAnyContent = false;

  constructor(
    private readonly emit: (kind: "reasoning" | "content", text: string) => void,
    options: { startsInThink?: boolean } = {},
  ) {
    this.inThink = options.startsInThink ?? false;
  }

  push(text: string): void {
    this.pending += text;
    while (this.pending.length > 0) {
      const tag = this.inThink ? "</think>" : "<think>";
      const at = this.pending.indexOf(tag);
      if (at >= 0) {
        const before = this.pending.slice(0, at);
        // An opening tag only counts at the start of the answer, so a literal "<think>" later in
        // an answer (e.g. in a code sample) is left alone.
        if (!this.inThink && (this.seenAnyContent || before.trim().length > 0)) {
          this.out("content", this.pending.slice(0, at + tag.length));
          this.pending = this.pending.slice(at + tag.length);
          continue;
        }
        this.out(this.inThink ? "reasoning" : "content", before);
        this.pending = this.pending.slice(at + tag.length);
        this.inThink = !this.inThink;
        continue;
      }
      const keep = partialTagSuffix(this.pending, tag);
      this.out(this.inThink ? "reasoning" : "content", this.pending.slice(0, this.pending.length - keep));
      this.pending = this.pending.slice(this.pending.length - keep);
      break;
    }
  }

  flush(): void {
    if (this.pending) this.out(this.inThink ? "reasoning" : "content", this.pending);
    this.pending = "";
  }

  private out(kind: "reasoning" | "content", text: string): void {
    if (!text) return;
    if (kind === "content" && text.trim().length > 0) this.seenAnyContent = true;
    this.emit(kind, text);
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTagSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}

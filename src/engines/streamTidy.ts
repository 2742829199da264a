type Kind = "reasoning" | "content";

/**
 * Gives reasoning and answer the shape DeepSeek's API returns: no leading or trailing blank lines
 * around either (models write "<think>\n…\n</think>\n\n…"). Whitespace at the end of a piece is
 * held until more text of the same kind proves it was inside the text, so streaming stays live.
 */
export class StreamTidy {
  private started: Record<Kind, boolean> = { reasoning: false, content: false };
  private heldSpace: Record<Kind, string> = { reasoning: "", content: "" };

  constructor(private readonly emit: (kind: Kind, text: string) => void) {}

  push(kind: Kind, text: string): void {
    if (!this.started[kind]) {
      text = text.replace(/^\s+/, "");
      if (!text) return;
      this.started[kind] = true;
    }
    const body = text.replace(/\s+$/, "");
    const trailing = text.slice(body.length);
    if (body.length === 0) {
      this.heldSpace[kind] += trailing;
      return;
    }
    this.emit(kind, this.heldSpace[kind] + body);
    this.heldSpace[kind] = trailing;
  }
}

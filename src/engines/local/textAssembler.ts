import type { LlamaModel, Token } from "node-llama-cpp";
import { enterPhase, profiling } from "../profile.ts";

type Kind = "reasoning" | "content";

/** A character is at most 4 UTF-8 bytes, and byte-level tokens carry at least one byte each. */
const MAX_HELD_TOKENS = 4;
const REPLACEMENT = "\uFFFD";

/**
 * Keeps split characters from reaching clients broken. Byte-level BPE models emit emoji and CJK
 * characters across several tokens; detokenized one chunk at a time, each piece decodes to U+FFFD.
 * Such tokens are held and decoded together with the following ones until the character is whole.
 * Tokens that never complete a character (random weights can emit stray bytes) are released after
 * MAX_HELD_TOKENS so the stream never stalls.
 */
export class TextAssembler {
  private held: Token[] = [];
  private heldKind: Kind | null = null;

  constructor(
    private readonly model: Pick<LlamaModel, "detokenize">,
    private readonly emit: (kind: Kind, text: string) => void,
  ) {}

  push(kind: Kind, tokens: readonly Token[], text: string): void {
    if (!profiling) return this.assemble(kind, tokens, text);
    const leave = enterPhase("assemble");
    try {
      this.assemble(kind, tokens, text);
    } finally {
      leave();
    }
  }

  private assemble(kind: Kind, tokens: readonly Token[], text: string): void {
    if (this.heldKind !== null && this.heldKind !== kind) this.flush();
    if (this.held.length === 0 && !text.includes(REPLACEMENT)) {
      if (text.length > 0) this.emit(kind, text);
      return;
    }
    this.held.push(...tokens);
    this.heldKind = kind;
    const joined = this.model.detokenize(this.held);
    if (endsIncomplete(joined) && this.held.length < MAX_HELD_TOKENS) return;
    this.held = [];
    this.heldKind = null;
    if (joined.length > 0) this.emit(kind, joined);
  }

  flush(): void {
    if (this.held.length === 0 || this.heldKind === null) return;
    const text = this.model.detokenize(this.held);
    const kind = this.heldKind;
    this.held = [];
    this.heldKind = null;
    if (text.length > 0) this.emit(kind, text);
  }
}

function endsIncomplete(text: string): boolean {
  return text.endsWith(REPLACEMENT);
}

import {
  noticeText,
  presentBlockDelta,
  presentBlockStart,
  presentBlockStop,
  thinkingSignature,
  type BlockDelta,
  type StartedBlock,
} from "../../presenters/anthropic.ts";

type Emit = (name: string, data: unknown) => void;

/**
 * Turns an engine's event stream into Anthropic's content blocks: one block open at a time, each
 * `content_block_start` → deltas → `content_block_stop`, indexes counting from 0. Reasoning is a
 * `thinking` block whose `signature_delta` comes last before its stop; text a `text` block; each
 * tool call a `tool_use` block fed `input_json_delta`s. Engines send a call's arguments before the
 * next call begins (src/engines/types.ts), so blocks never interleave.
 */
export class BlockStream {
  private index = -1;
  private open: StartedBlock["type"] | null = null;
  private thinking = "";
  /** The block of each tool call (the engine's call index → block index). */
  private readonly callBlocks = new Map<number, number>();
  private answered = false;

  constructor(private readonly emit: Emit) {}

  reasoning(text: string): void {
    if (this.open !== "thinking") this.start({ type: "thinking", thinking: "", signature: "" });
    this.thinking += text;
    this.delta({ type: "thinking_delta", thinking: text });
  }

  content(text: string): void {
    if (this.open !== "text") this.start({ type: "text", text: "" });
    this.answered = true;
    this.delta({ type: "text_delta", text });
  }

  toolCall(call: number, id: string, name: string): void {
    this.start({ type: "tool_use", id, name, input: {} });
    this.answered = true;
    this.callBlocks.set(call, this.index);
  }

  toolArguments(call: number, text: string): void {
    // Only the open call's block takes arguments (see the class comment).
    if (this.open === "tool_use" && this.callBlocks.get(call) === this.index && text) this.delta({ type: "input_json_delta", partial_json: text });
  }

  /** Moderation notices: a text block of their own, after the answer (see `contentBlocks`). */
  notices(notices: readonly string[]): void {
    if (notices.length === 0) return;
    this.start({ type: "text", text: "" });
    this.answered = true;
    this.delta({ type: "text_delta", text: noticeText(notices) });
  }

  /**
   * Closes the last block. An answer with no text and no tool call still ends with an (empty) text
   * block, as the non-streamed message does.
   */
  finish(): void {
    if (!this.answered) this.start({ type: "text", text: "" });
    this.close();
  }

  private start(block: StartedBlock): void {
    this.close();
    this.index++;
    this.open = block.type;
    this.emit("content_block_start", presentBlockStart(this.index, block));
  }

  private delta(delta: BlockDelta): void {
    this.emit("content_block_delta", presentBlockDelta(this.index, delta));
  }

  private close(): void {
    if (this.open === null) return;
    if (this.open === "thinking") {
      this.delta({ type: "signature_delta", signature: thinkingSignature(this.thinking) });
      this.thinking = "";
    }
    this.emit("content_block_stop", presentBlockStop(this.index));
    this.open = null;
  }
}

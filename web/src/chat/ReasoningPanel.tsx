import { useState } from "react";
import type { Message } from "../api/conversations.ts";
import type { LiveReply } from "./useChat.ts";

/**
 * The model's reasoning: open and streaming while it thinks ("Thinking…"), labelled "Thought for N
 * seconds" once the answer starts, folded when the answer ends; a click opens or folds it. Shown as plain text: it is the model
 * talking to itself, not a formatted answer.
 */
export function ReasoningPanel({ message, live }: { message: Message; live: LiveReply | null }) {
  const thinking = message.status === "streaming" && message.content === "" && (live === null || live.reasoningEndedAt === null);
  const [open, setOpen] = useState<boolean | null>(null);
  if (message.reasoning === "") return null;
  // Open while the answer is still being written (as DeepSeek does), folded once it ends, unless toggled.
  const expanded = thinking || (open ?? message.status === "streaming");
  const seconds = Math.max(1, Math.round(durationMs(message, live) / 1000));
  const label = thinking ? "Thinking…" : `Thought for ${seconds} second${seconds === 1 ? "" : "s"}`;
  return (
    <section className={`reasoning ${thinking ? "reasoning-live" : ""}`} data-testid="reasoning" data-state={thinking ? "thinking" : "done"}>
      <button
        type="button"
        className="reasoning-toggle"
        aria-expanded={expanded}
        disabled={thinking}
        onClick={() => setOpen(!expanded)}
        data-testid="reasoning-toggle"
      >
        {thinking ? <span className="spinner" aria-hidden /> : <span className="chevron" aria-hidden>{expanded ? "▾" : "▸"}</span>}
        {label}
      </button>
      {expanded ? (
        <div className="reasoning-text" data-testid="reasoning-text">
          {message.reasoning}
        </div>
      ) : null}
    </section>
  );
}

/**
 * The stored time once the answer ended; while it is written and watched, the live clock (set from
 * the server's figure at a re-attach): a streaming message's stored time is only what it was at
 * the last write, or at the re-attach.
 */
function durationMs(message: Message, live: LiveReply | null): number {
  if (message.status !== "streaming" && message.reasoning_ms !== null) return message.reasoning_ms;
  if (live?.reasoningStartedAt != null) return (live.reasoningEndedAt ?? performance.now()) - live.reasoningStartedAt;
  return message.reasoning_ms ?? 0;
}

import { useEffect, useRef, useState } from "react";
import type { Message } from "../api/conversations.ts";

/** Long answers are cut in the announcement: the reader can go on in the thread itself. */
const MAX_ANNOUNCED_CHARS = 1000;

/**
 * Tells screen readers when an answer watched on this page ends — finished, stopped, interrupted
 * or failed — through one live region that is always in the page (a region inserted together
 * with its text is not announced by every reader). Streamed tokens are never announced one by
 * one: that would read the answer in fragments, over and over.
 */
export function AnswerAnnouncer({ thread, liveId }: { thread: Message[]; liveId: string | null }) {
  // The count alternates a trailing no-break space, so the same words twice (two equal answers) are still a change to announce.
  const [said, setSaid] = useState({ text: "", count: 0 });
  /**
   * Answers seen being written (listened to, or stored as streaming): only their end is news, not
   * an old conversation opened. The live id counts too: an answer that fails at once may never be
   * rendered as streaming (its start and its error arrive together).
   */
  const streaming = useRef(new Set<string>());
  useEffect(() => {
    if (liveId) streaming.current.add(liveId);
    for (const message of thread) {
      if (message.role !== "assistant") continue;
      if (message.status === "streaming") {
        streaming.current.add(message.id);
      } else if (streaming.current.delete(message.id)) {
        const text = describe(message);
        setSaid((last) => ({ text, count: last.count + 1 }));
      }
    }
  }, [thread, liveId]);
  return (
    <div className="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
      {said.text === "" ? "" : `${said.text}${said.count % 2 === 0 ? "\u00a0" : ""}`}
    </div>
  );
}

function describe(message: Message): string {
  const body = message.content.length > MAX_ANNOUNCED_CHARS ? `${message.content.slice(0, MAX_ANNOUNCED_CHARS)}…` : message.content;
  // Ended by a moderation policy: its notice is the news (what was shown before it stays shown).
  const withheld = message.moderation?.withheld ? message.moderation.interventions.find((i) => i.action === "withhold") : undefined;
  if (withheld) return `Answer withheld. ${withheld.notice}`;
  switch (message.status) {
    case "complete":
      return `Answer finished. ${body}`.trim();
    case "stopped":
      return `Answer stopped. ${body}`.trim();
    case "interrupted":
      return "The answer was interrupted: the server stopped while writing it.";
    case "error":
      return `The answer failed: ${message.error ?? "an error occurred."}`;
    default:
      return "";
  }
}

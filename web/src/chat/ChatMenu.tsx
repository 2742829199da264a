import { lazy, Suspense, useEffect, useRef, useState } from "react";
import type { Conversation } from "../api/conversations.ts";
import type { ChatToolsView } from "./ChatTools.tsx";

/**
 * The open conversation's menu (settings, share, export). Only its button is part of the chat's
 * first script: the menu, the settings panel and the share dialog are a chunk of their own
 * (ChatTools.tsx), fetched when the button is first pointed at or pressed.
 */
const loadTools = () => import("./ChatTools.tsx");
const ChatTools = lazy(async () => ({ default: (await loadTools()).ChatTools }));

export function ChatMenu({ conversation }: { conversation: Conversation }) {
  const [view, setView] = useState<ChatToolsView | null>(null);
  const button = useRef<HTMLButtonElement>(null);
  // Another conversation: whatever was open belonged to the last one.
  useEffect(() => setView(null), [conversation.id]);
  const close = () => {
    setView(null);
    button.current?.focus();
  };
  return (
    <div className="chat-menu">
      <button
        ref={button}
        type="button"
        className="btn-ghost chat-menu-button"
        aria-label="Conversation menu"
        title="Settings, share, export"
        aria-haspopup="dialog"
        aria-expanded={view !== null}
        data-testid="chat-menu"
        onPointerEnter={() => void loadTools().catch(() => undefined)}
        onFocus={() => void loadTools().catch(() => undefined)}
        onClick={() => setView(view === null ? "menu" : null)}
      >
        ⋯
      </button>
      {view !== null ? (
        <Suspense fallback={<div className="chat-popover muted small">Loading…</div>}>
          <ChatTools conversation={conversation} view={view} onView={setView} onClose={close} />
        </Suspense>
      ) : null}
    </div>
  );
}

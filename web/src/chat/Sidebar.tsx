import { useEffect, useState, type FormEvent } from "react";
import { deleteConversation, listConversations, renameConversation, type Conversation } from "../api/conversations.ts";
import { describeError } from "../api/http.ts";
import { Link, navigate } from "../router.tsx";

export interface SidebarProps {
  activeId: string | null;
  /** Bumped by the chat when the list changed (new conversation, title, activity). */
  version: number;
  onNavigate: () => void;
}

const SEARCH_DEBOUNCE_MS = 250;

/** Conversations, newest activity first, with title search, rename and delete. */
export function Sidebar({ activeId, version, onNavigate }: SidebarProps) {
  const [query, setQuery] = useState("");
  const [items, setItems] = useState<Conversation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let cancelled = false;
    const timer = window.setTimeout(
      () => {
        listConversations(query.trim())
          .then((page) => {
            if (cancelled) return;
            setItems(page.data);
            setError(null);
          })
          .catch((e) => !cancelled && setError(describeError(e)));
      },
      query ? SEARCH_DEBOUNCE_MS : 0,
    );
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [query, version, reload]);

  const refresh = () => setReload((n) => n + 1);

  return (
    <div className="sidebar-body">
      <button
        type="button"
        className="btn-primary new-chat"
        onClick={() => {
          navigate("/");
          onNavigate();
        }}
      >
        + New chat
      </button>
      <input
        className="search"
        type="search"
        placeholder="Search titles"
        aria-label="Search conversations"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      <nav className="conversation-list" aria-label="Conversations" data-testid="conversation-list">
        {error ? (
          <div className="error-text small" role="alert">
            {error}{" "}
            <button type="button" className="btn-link" onClick={refresh}>
              Retry
            </button>
          </div>
        ) : null}
        {items === null && !error ? <div className="muted small">Loading…</div> : null}
        {items?.length === 0 ? <div className="muted small">{query ? "No conversation matches." : "No conversations yet."}</div> : null}
        {items?.map((c) => (
          <ConversationItem key={c.id} conversation={c} active={c.id === activeId} onChanged={refresh} onNavigate={onNavigate} onError={setError} />
        ))}
      </nav>
    </div>
  );
}

function ConversationItem({
  conversation,
  active,
  onChanged,
  onNavigate,
  onError,
}: {
  conversation: Conversation;
  active: boolean;
  onChanged: () => void;
  onNavigate: () => void;
  onError: (message: string) => void;
}) {
  const [mode, setMode] = useState<"view" | "rename" | "confirm-delete">("view");
  const [title, setTitle] = useState(conversation.title ?? "");
  const label = conversation.title ?? "New chat";

  const rename = async (event: FormEvent) => {
    event.preventDefault();
    if (title.trim() === "") return;
    try {
      await renameConversation(conversation.id, title.trim());
      setMode("view");
      onChanged();
    } catch (e) {
      onError(describeError(e));
    }
  };
  const remove = async () => {
    try {
      await deleteConversation(conversation.id);
      if (active) navigate("/");
      onChanged();
    } catch (e) {
      onError(describeError(e));
    }
  };

  if (mode === "rename") {
    return (
      <form className="conversation-item editing" onSubmit={rename}>
        <input value={title} onChange={(e) => setTitle(e.target.value)} aria-label="New title" autoFocus maxLength={240} onKeyDown={(e) => e.key === "Escape" && setMode("view")} />
        <button type="submit" className="btn-ghost btn-small">
          Save
        </button>
      </form>
    );
  }
  if (mode === "confirm-delete") {
    return (
      <div className="conversation-item confirm">
        <span className="small">Delete “{label}”?</span>
        <button type="button" className="btn-danger btn-small" onClick={remove}>
          Delete
        </button>
        <button type="button" className="btn-ghost btn-small" onClick={() => setMode("view")}>
          Keep
        </button>
      </div>
    );
  }
  return (
    <div className={`conversation-item ${active ? "active" : ""}`}>
      <Link href={`/c/${conversation.id}`} className="conversation-link" onClick={onNavigate} title={label} aria-current={active ? "page" : undefined}>
        {label}
      </Link>
      <span className="conversation-actions">
        <button type="button" className="btn-ghost btn-icon" aria-label={`Rename ${label}`} title="Rename" onClick={() => { setTitle(conversation.title ?? ""); setMode("rename"); }}>
          ✎
        </button>
        <button type="button" className="btn-ghost btn-icon" aria-label={`Delete ${label}`} title="Delete" onClick={() => setMode("confirm-delete")}>
          ×
        </button>
      </span>
    </div>
  );
}

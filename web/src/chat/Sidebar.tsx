import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent, type MouseEvent } from "react";
import { deleteConversation, listConversations, pinConversation, renameConversation, type ConversationListItem } from "../api/conversations.ts";
import { describeError } from "../api/http.ts";
import { Link, navigate } from "../router.tsx";
import { groupByDate } from "./dateGroups.ts";

export interface SidebarProps {
  activeId: string | null;
  /** Bumped by the chat when the list changed (new conversation, title, activity). */
  version: number;
  onNavigate: () => void;
}

const SEARCH_DEBOUNCE_MS = 250;

/**
 * Conversations, pinned first, then by last activity in date groups (dateGroups.ts); search covers
 * titles and message text, each result saying which message matched; rename, pin and delete.
 */
export function Sidebar({ activeId, version, onNavigate }: SidebarProps) {
  const [query, setQuery] = useState("");
  const [items, setItems] = useState<ConversationListItem[] | null>(null);
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
  // A pin moves its entry to another group (a new element): from the keyboard, focus follows it.
  const refocusId = useRef<string | null>(null);
  const refreshAndFocus = (id: string) => {
    refocusId.current = id;
    refresh();
  };
  useEffect(() => {
    const id = refocusId.current;
    if (id === null || items === null || !items.some((c) => c.id === id)) return;
    refocusId.current = null;
    document.querySelector<HTMLElement>(`.conversation-list a[href="/c/${CSS.escape(id)}"]`)?.focus();
  }, [items]);

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
        placeholder="Search chats"
        aria-label="Search conversations"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      <nav className="conversation-list" aria-label="Conversations" data-testid="conversation-list">
        <p id={KEYS_HINT_ID} className="sr-only">
          F2 renames this conversation, Delete deletes it; the arrow keys move between conversations and to their buttons.
        </p>
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
        {items && !query.trim()
          ? groupByDate(items).map((group) => (
              <section key={group.key} className="conversation-group" aria-labelledby={`conversation-group-${group.key}`} data-testid={`group-${group.key}`}>
                <h2 id={`conversation-group-${group.key}`} className="conversation-group-label">
                  {group.label}
                </h2>
                {group.items.map((c) => (
                  <ConversationItem key={c.id} conversation={c} active={c.id === activeId} onChanged={refresh} onPinned={refreshAndFocus} onNavigate={onNavigate} onError={setError} />
                ))}
              </section>
            ))
          : items?.map((c) => (
              <ConversationItem key={c.id} conversation={c} active={c.id === activeId} onChanged={refresh} onPinned={refreshAndFocus} onNavigate={onNavigate} onError={setError} />
            ))}
      </nav>
    </div>
  );
}

function ConversationItem({
  conversation,
  active,
  onChanged,
  onPinned,
  onNavigate,
  onError,
}: {
  conversation: ConversationListItem;
  active: boolean;
  onChanged: () => void;
  /** After a pin from the keyboard: refresh, and keep the focus on this entry. */
  onPinned: (id: string) => void;
  onNavigate: () => void;
  onError: (message: string) => void;
}) {
  const [mode, setMode] = useState<"view" | "rename" | "confirm-delete">("view");
  const [title, setTitle] = useState(conversation.title ?? "");
  const label = conversation.title ?? "New chat";
  const item = useRef<HTMLElement | null>(null);
  // The entry's element in whichever mode (view, rename form, delete question). Nulls are ignored: when
  // the mode changes, the old element's null may come after the new one's element.
  const setItem = (element: HTMLElement | null) => void (element && (item.current = element));
  /** Started from the keyboard: focus follows into the rename box or the delete question, and back to the entry after. */
  const refocus = useRef(false);
  // Before paint, so a key pressed right after (typing the new title) lands where it should.
  useLayoutEffect(() => {
    if (!refocus.current) return;
    if (mode === "view") refocus.current = false;
    const selector = mode === "view" ? ".conversation-link" : mode === "rename" ? "input" : "[data-keep]";
    item.current?.querySelector<HTMLElement>(selector)?.focus();
  }, [mode]);
  /** `keyboard`: a key, or a button pressed with Enter/Space (a click with no pointer has detail 0). */
  const enter = (next: "rename" | "confirm-delete", keyboard: boolean) => {
    refocus.current = keyboard;
    if (next === "rename") setTitle(conversation.title ?? "");
    setMode(next);
  };
  const back = () => setMode("view");
  const pinned = conversation.pinned_at !== null;
  const togglePin = async (keyboard: boolean) => {
    try {
      await pinConversation(conversation.id, !pinned);
      if (keyboard) onPinned(conversation.id);
      else onChanged();
    } catch (e) {
      onError(describeError(e));
    }
  };
  const match = conversation.match ?? null;
  const snippetId = `conversation-match-${conversation.id}`;

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
    // Deleted from the keyboard: focus goes on to a neighbouring entry, not to the page's start.
    const entries = refocus.current ? [...(item.current?.closest(".conversation-list")?.querySelectorAll(".conversation-item") ?? [])] : [];
    const at = entries.indexOf(item.current!);
    const neighbour = (entries[at + 1] ?? entries[at - 1])?.querySelector<HTMLElement>(".conversation-link");
    try {
      await deleteConversation(conversation.id);
      if (active) navigate("/");
      refocus.current = false;
      neighbour?.focus();
      onChanged();
    } catch (e) {
      onError(describeError(e));
    }
  };

  if (mode === "rename") {
    return (
      <form className="conversation-item editing" onSubmit={rename} ref={setItem}>
        <input value={title} onChange={(e) => setTitle(e.target.value)} aria-label="New title" autoFocus maxLength={240} onKeyDown={(e) => e.key === "Escape" && back()} />
        <button type="submit" className="btn-ghost btn-small">
          Save
        </button>
      </form>
    );
  }
  if (mode === "confirm-delete") {
    return (
      <div className="conversation-item confirm" ref={setItem}>
        <span className="small">Delete “{label}”?</span>
        <button type="button" className="btn-danger btn-small" onClick={remove}>
          Delete
        </button>
        <button type="button" className="btn-ghost btn-small" onClick={back} onKeyDown={(e) => e.key === "Escape" && back()} data-keep>
          Keep
        </button>
      </div>
    );
  }
  return (
    // One Tab stop per entry (its link); its buttons are reached with the arrow keys or the shortcuts.
    <div className={`conversation-item ${active ? "active" : ""} ${match ? "has-match" : ""}`} ref={setItem} onKeyDown={(e) => onItemKey(e, item.current, enter)}>
      <Link
        href={`/c/${conversation.id}`}
        className="conversation-link"
        onClick={onNavigate}
        title={label}
        aria-current={active ? "page" : undefined}
        aria-keyshortcuts="F2 Delete"
        aria-describedby={match ? `${snippetId} ${KEYS_HINT_ID}` : KEYS_HINT_ID}
      >
        {label}
      </Link>
      <span className="conversation-actions">
        <button type="button" tabIndex={-1} className="btn-ghost btn-icon" aria-label={`${pinned ? "Unpin" : "Pin"} ${label}`} aria-pressed={pinned} title={pinned ? "Unpin" : "Pin"} onClick={(e) => void togglePin(byKeyboard(e))}>
          {pinned ? "★" : "☆"}
        </button>
        <button type="button" tabIndex={-1} className="btn-ghost btn-icon" aria-label={`Rename ${label}`} title="Rename (F2)" onClick={(e) => enter("rename", byKeyboard(e))}>
          ✎
        </button>
        <button type="button" tabIndex={-1} className="btn-ghost btn-icon" aria-label={`Delete ${label}`} title="Delete (Delete key)" onClick={(e) => enter("confirm-delete", byKeyboard(e))}>
          ×
        </button>
      </span>
      {match ? (
        <MatchSnippet
          id={snippetId}
          match={match}
          onClick={() => {
            navigate(`/c/${conversation.id}`);
            onNavigate();
          }}
        />
      ) : null}
    </div>
  );
}

/** Which message matched a search, as plain text with the query's words marked (never HTML). */
function MatchSnippet({ id, match, onClick }: { id: string; match: NonNullable<ConversationListItem["match"]>; onClick: () => void }) {
  const parts: Array<{ text: string; hit: boolean }> = [];
  let at = 0;
  for (const [start, end] of match.highlights) {
    if (start < at || end > match.snippet.length) continue;
    if (start > at) parts.push({ text: match.snippet.slice(at, start), hit: false });
    parts.push({ text: match.snippet.slice(start, end), hit: true });
    at = end;
  }
  if (at < match.snippet.length) parts.push({ text: match.snippet.slice(at), hit: false });
  return (
    // A click opens the conversation like its link (the link is the entry's one keyboard stop).
    <div id={id} className="conversation-snippet" data-testid="search-snippet" onClick={onClick}>
      <span className="conversation-snippet-role">{match.role === "user" ? "You: " : "Answer: "}</span>
      {parts.map((p, i) => (p.hit ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>))}
    </div>
  );
}

/** Read with each entry's link by screen readers: how to reach what the entry's buttons do. */
const KEYS_HINT_ID = "conversation-keys-hint";

const byKeyboard = (event: MouseEvent) => event.detail === 0;

/**
 * An entry's keys (a roving focus inside the list, so the list costs one Tab stop per entry):
 * F2 renames, Delete asks to delete; → moves to the entry's buttons, ← and Esc back to its link;
 * ↑ and ↓ move between entries.
 */
function onItemKey(event: KeyboardEvent<HTMLDivElement>, item: HTMLElement | null, enter: (mode: "rename" | "confirm-delete", keyboard: boolean) => void) {
  if (!item || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target as HTMLElement;
  const link = item.querySelector<HTMLElement>(".conversation-link");
  const buttons = [...item.querySelectorAll<HTMLElement>(".conversation-actions button")];
  const stops = link ? [link, ...buttons] : buttons;
  const at = stops.indexOf(target);
  if (at < 0) return;
  let next: HTMLElement | undefined;
  switch (event.key) {
    case "F2":
      enter("rename", true);
      break;
    case "Delete":
      enter("confirm-delete", true);
      break;
    case "ArrowRight":
      next = stops[Math.min(at + 1, stops.length - 1)];
      break;
    case "ArrowLeft":
      next = stops[Math.max(at - 1, 0)];
      break;
    case "Escape":
      if (at === 0) return;
      next = link ?? undefined;
      break;
    case "ArrowDown":
    case "ArrowUp": {
      const links = [...(item.closest(".conversation-list")?.querySelectorAll<HTMLElement>(".conversation-link") ?? [])];
      const here = links.indexOf(link!);
      next = links[here + (event.key === "ArrowDown" ? 1 : -1)];
      if (!next) return;
      break;
    }
    default:
      return;
  }
  event.preventDefault();
  next?.focus();
}

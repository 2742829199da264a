import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import {
  createShare,
  exportUrl,
  getSettings,
  listShares,
  revokeShare,
  saveSettings,
  type ConversationSettings,
  type ConversationShare,
} from "../api/conversationFeatures.ts";
import type { Conversation } from "../api/conversations.ts";
import { describeError } from "../api/http.ts";
import { CopyButton } from "../components/CopyButton.tsx";
import { ErrorText } from "../components/ErrorText.tsx";

/** Which part of the tools is open. */
export type ChatToolsView = "menu" | "settings" | "share";

/**
 * The conversation menu's contents (a chunk of its own, see ChatMenu.tsx): the menu itself, the
 * settings panel and the share dialog. Each is a small non-modal dialog that Esc closes.
 */
export function ChatTools({
  conversation,
  view,
  onView,
  onClose,
}: {
  conversation: Conversation;
  view: ChatToolsView;
  onView: (view: ChatToolsView) => void;
  onClose: () => void;
}) {
  if (view === "settings") return <SettingsPanel conversation={conversation} onClose={onClose} />;
  if (view === "share") return <SharePanel conversation={conversation} onClose={onClose} />;
  return <Menu conversation={conversation} onView={onView} onClose={onClose} />;
}

/**
 * A popover that takes the focus when it opens and closes on Esc — wherever the focus is (a button
 * that disabled itself drops it), and before the chat's own Esc (stop the answer) hears it.
 */
function Popover({ label, onClose, children, wide = false, testId }: { label: string; onClose: () => void; children: ReactNode; wide?: boolean; testId: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.querySelector<HTMLElement>("button, a, input, textarea")?.focus();
  }, []);
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape") return;
      event.stopPropagation();
      close.current();
    };
    // Capture on window: runs before the chat's listener on window, and stops it.
    window.addEventListener("keydown", onKey, true);
    // The menu (not the panels: they hold typed text) also closes on a click elsewhere.
    const onPointer = (event: PointerEvent) => {
      if (!wide && !box.current?.closest(".chat-menu")?.contains(event.target as Node)) close.current();
    };
    document.addEventListener("pointerdown", onPointer);
    return () => {
      window.removeEventListener("keydown", onKey, true);
      document.removeEventListener("pointerdown", onPointer);
    };
  }, [wide]);
  return (
    <div ref={box} className={`chat-popover ${wide ? "chat-popover-wide" : ""}`} role="dialog" aria-label={label} data-testid={testId}>
      {children}
    </div>
  );
}

function Menu({ conversation, onView, onClose }: { conversation: Conversation; onView: (view: ChatToolsView) => void; onClose: () => void }) {
  const [reasoning, setReasoning] = useState(false);
  return (
    <Popover label="Conversation menu" onClose={onClose} testId="chat-tools-menu">
      <button type="button" className="chat-menu-item" onClick={() => onView("settings")}>
        Settings…
      </button>
      <button type="button" className="chat-menu-item" onClick={() => onView("share")}>
        Share…
      </button>
      <div className="chat-menu-sep" role="separator" />
      {/* Plain links: the server names the file and the browser downloads it. */}
      <a className="chat-menu-item" href={exportUrl(conversation.id, "md", reasoning)} download onClick={onClose}>
        Export as Markdown
      </a>
      <a className="chat-menu-item" href={exportUrl(conversation.id, "json", reasoning)} download onClick={onClose}>
        Export as JSON
      </a>
      <label className="chat-menu-check small">
        <input type="checkbox" checked={reasoning} onChange={(e) => setReasoning(e.target.checked)} /> Include reasoning in exports
      </label>
    </Popover>
  );
}

/** A whole number of tokens, or empty for the model's default; undefined when not a valid number. */
function tokensOf(text: string, min: number): number | null | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  if (!/^\d+$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return n >= min ? n : undefined;
}

function SettingsPanel({ conversation, onClose }: { conversation: Conversation; onClose: () => void }) {
  const id = useId();
  const [limits, setLimits] = useState<{ max_system_prompt_chars: number; max_tokens: number; max_thinking_budget: number | null } | null>(null);
  const [form, setForm] = useState({ system_prompt: "", temperature: "", max_tokens: "", thinking_budget: "" });
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let cancelled = false;
    getSettings(conversation.id)
      .then((r) => {
        if (cancelled) return;
        setLimits(r.limits);
        const s = r.settings;
        setForm({
          system_prompt: s.system_prompt ?? "",
          temperature: s.temperature === null ? "" : String(s.temperature),
          max_tokens: s.max_tokens === null ? "" : String(s.max_tokens),
          thinking_budget: s.thinking_budget === null ? "" : String(s.thinking_budget),
        });
      })
      .catch((e) => !cancelled && setError(describeError(e)));
    return () => {
      cancelled = true;
    };
  }, [conversation.id]);

  const set = (key: keyof typeof form) => (value: string) => {
    setForm((f) => ({ ...f, [key]: value }));
    setSaved(false);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    // The server checks it all again; these say what is wrong before a round trip.
    const temperature = form.temperature.trim() === "" ? null : Number(form.temperature);
    if (temperature !== null && !(Number.isFinite(temperature) && temperature >= 0 && temperature <= 2)) return setError("The temperature must be a number from 0 to 2.");
    const maxTokens = tokensOf(form.max_tokens, 1);
    if (maxTokens === undefined) return setError("The answer length must be a whole number of tokens, at least 1.");
    const budget = tokensOf(form.thinking_budget, 0);
    if (budget === undefined) return setError("The thinking budget must be a whole number of tokens.");
    const cap = limits?.max_thinking_budget ?? null;
    if (budget !== null && cap !== null && budget > cap) return setError(`Your plan allows a thinking budget of at most ${cap.toLocaleString()} tokens.`);
    setBusy(true);
    try {
      await saveSettings(conversation.id, { system_prompt: form.system_prompt.trim() === "" ? null : form.system_prompt, temperature, max_tokens: maxTokens, thinking_budget: budget });
      setError(null);
      setSaved(true);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const cap = limits?.max_thinking_budget ?? null;
  return (
    <Popover label="Chat settings" onClose={onClose} wide testId="chat-settings">
      <form className="chat-settings" onSubmit={submit} noValidate>
        <h2 className="chat-popover-title">Chat settings</h2>
        <p className="muted small">For every answer in this conversation. Empty fields keep the model's defaults.</p>
        <label htmlFor={`${id}-system`}>System prompt</label>
        <textarea
          id={`${id}-system`}
          rows={4}
          value={form.system_prompt}
          maxLength={limits?.max_system_prompt_chars}
          onChange={(e) => set("system_prompt")(e.target.value)}
          placeholder="e.g. You are a concise assistant."
        />
        <div className="chat-settings-row">
          <span>
            <label htmlFor={`${id}-temperature`}>Temperature</label>
            <input id={`${id}-temperature`} inputMode="decimal" value={form.temperature} onChange={(e) => set("temperature")(e.target.value)} placeholder="default" aria-describedby={`${id}-temperature-hint`} />
            <span id={`${id}-temperature-hint`} className="muted small">
              0–2
            </span>
          </span>
          <span>
            <label htmlFor={`${id}-max`}>Answer length</label>
            <input id={`${id}-max`} inputMode="numeric" value={form.max_tokens} onChange={(e) => set("max_tokens")(e.target.value)} placeholder="default" aria-describedby={`${id}-max-hint`} />
            <span id={`${id}-max-hint`} className="muted small">
              most tokens, reasoning included
            </span>
          </span>
          <span>
            <label htmlFor={`${id}-budget`}>Thinking budget</label>
            <input id={`${id}-budget`} inputMode="numeric" value={form.thinking_budget} onChange={(e) => set("thinking_budget")(e.target.value)} placeholder="default" aria-describedby={`${id}-budget-hint`} />
            <span id={`${id}-budget-hint`} className="muted small">
              {cap === null ? "reasoning tokens" : `reasoning tokens, at most ${cap.toLocaleString()} on your plan`}
            </span>
          </span>
        </div>
        <ErrorText error={error} />
        <div className="chat-settings-actions">
          {saved ? (
            <span className="muted small" role="status" data-testid="settings-saved">
              Saved
            </span>
          ) : null}
          <button type="button" className="btn-ghost btn-small" onClick={onClose}>
            Close
          </button>
          <button type="submit" className="btn-primary btn-small" disabled={busy || limits === null}>
            Save
          </button>
        </div>
      </form>
    </Popover>
  );
}

function SharePanel({ conversation, onClose }: { conversation: Conversation; onClose: () => void }) {
  const [shares, setShares] = useState<ConversationShare[] | null>(null);
  const [options, setOptions] = useState({ include_reasoning: false, show_author: false });
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const reload = () =>
    listShares(conversation.id)
      .then((r) => setShares(r.data))
      .catch((e) => setError(describeError(e)));
  useEffect(() => void reload(), [conversation.id]);

  const create = async () => {
    setBusy(true);
    try {
      const share = await createShare(conversation.id, options);
      setCreated(`${location.origin}${share.path}`);
      setError(null);
      await reload();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (share: ConversationShare) => {
    try {
      await revokeShare(conversation.id, share.id);
      setCreated(null);
      await reload();
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <Popover label="Share this conversation" onClose={onClose} wide testId="share-panel">
      <h2 className="chat-popover-title">Share</h2>
      <p className="muted small">
        Anyone with the link can read this conversation as it is now, without signing in. Later messages are not shared; revoking the link stops it at once.
      </p>
      <label className="chat-menu-check small">
        <input type="checkbox" checked={options.include_reasoning} onChange={(e) => setOptions({ ...options, include_reasoning: e.target.checked })} /> Include the reasoning
      </label>
      <label className="chat-menu-check small">
        <input type="checkbox" checked={options.show_author} onChange={(e) => setOptions({ ...options, show_author: e.target.checked })} /> Show my user name
      </label>
      <div className="chat-settings-actions">
        <button type="button" className="btn-primary btn-small" onClick={() => void create()} disabled={busy}>
          Create link
        </button>
      </div>
      {created ? (
        <div className="share-created">
          <input readOnly value={created} aria-label="Share link" data-testid="share-link" onFocus={(e) => e.target.select()} />
          <CopyButton text={created} label="Copy link" />
          <p className="muted small">Copy it now: it is not shown again.</p>
        </div>
      ) : null}
      <ErrorText error={error} />
      {shares && shares.length > 0 ? (
        <ul className="share-list" aria-label="Live links">
          {shares.map((share) => (
            <li key={share.id} data-testid="share-row">
              <span className="small">
                {new Date(share.created_at).toLocaleString()}
                {share.include_reasoning ? " · with reasoning" : ""}
                {share.show_author ? " · with your name" : ""}
              </span>
              <button type="button" className="btn-ghost btn-small" onClick={() => void revoke(share)}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      ) : shares ? (
        <p className="muted small">No live links.</p>
      ) : null}
      <div className="chat-settings-actions">
        <button type="button" className="btn-ghost btn-small" onClick={onClose}>
          Close
        </button>
      </div>
    </Popover>
  );
}

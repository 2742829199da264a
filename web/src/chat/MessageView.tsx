import { useState, type KeyboardEvent } from "react";
import type { Message } from "../api/conversations.ts";
import { CopyButton } from "../components/CopyButton.tsx";
import { touchKeyboard } from "./Composer.tsx";
import { Markdown } from "../markdown/Markdown.tsx";
import { ModerationNotices, WithheldText } from "./ModerationNotice.tsx";
import { ReasoningPanel } from "./ReasoningPanel.tsx";
import { SearchedLine, SourceChips } from "./Sources.tsx";
import type { LiveReply } from "./useChat.ts";

export interface MessageViewProps {
  message: Message;
  /** Position among its siblings (edits / regenerations of the same turn), 1-based. */
  branch: { index: number; count: number };
  live: LiveReply | null;
  /** Actions are offered only when nothing is streaming. */
  idle: boolean;
  isLast: boolean;
  onBranch: (offset: -1 | 1) => void;
  onRegenerate: () => void;
  onEdit: (content: string) => void;
}

export function MessageView(props: MessageViewProps) {
  return props.message.role === "user" ? <UserMessage {...props} /> : <AssistantMessage {...props} />;
}

function BranchNav({ branch, onBranch, idle }: Pick<MessageViewProps, "branch" | "onBranch" | "idle">) {
  if (branch.count < 2) return null;
  return (
    <span className="branch-nav" data-testid="branch-nav">
      <button type="button" className="btn-ghost btn-small" aria-label="Previous version" disabled={!idle || branch.index <= 1} onClick={() => onBranch(-1)}>
        ‹
      </button>
      <span className="branch-count">
        {branch.index}/{branch.count}
      </span>
      <button type="button" className="btn-ghost btn-small" aria-label="Next version" disabled={!idle || branch.index >= branch.count} onClick={() => onBranch(1)}>
        ›
      </button>
    </span>
  );
}

function UserMessage({ message, branch, idle, onBranch, onEdit }: MessageViewProps) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.content);
  const submit = () => {
    if (draft.trim() === "") return;
    setEditing(false);
    onEdit(draft);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // As in the composer: on a touch keyboard Enter makes a new line, and the Send button sends.
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing && !touchKeyboard()) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape") {
      setEditing(false);
    }
  };
  if (editing) {
    return (
      <div className="message message-user editing">
        <textarea className="edit-box" value={draft} onChange={(e) => setDraft(e.target.value)} onKeyDown={onKeyDown} autoFocus rows={3} aria-label="Edit message" />
        <div className="message-actions">
          <button type="button" className="btn-ghost btn-small" onClick={() => setEditing(false)}>
            Cancel
          </button>
          <button type="button" className="btn-primary btn-small" onClick={submit} disabled={draft.trim() === ""}>
            Send
          </button>
        </div>
      </div>
    );
  }
  return (
    <div className="message message-user" data-testid="user-message" data-message-id={message.id}>
      {/* Plain text, never markdown or HTML: what the user typed is shown exactly as typed. */}
      <div className="bubble">{message.content}</div>
      <div className="message-actions">
        <BranchNav branch={branch} onBranch={onBranch} idle={idle} />
        <CopyButton text={message.content} />
        <button
          type="button"
          className="btn-ghost btn-small"
          disabled={!idle || message.id.startsWith("pending-")}
          onClick={() => {
            setDraft(message.content);
            setEditing(true);
          }}
        >
          Edit
        </button>
      </div>
    </div>
  );
}

const STATUS_NOTES: Partial<Record<Message["status"], string>> = {
  stopped: "Stopped",
  interrupted: "Interrupted — the server stopped while writing this answer",
};

function AssistantMessage({ message, branch, live, idle, isLast, onBranch, onRegenerate }: MessageViewProps) {
  const streaming = message.status === "streaming";
  const mine = live !== null && live.assistantId === message.id;
  const waiting = streaming && message.content === "" && message.reasoning === "";
  const note = STATUS_NOTES[message.status];
  const moderation = message.moderation ?? null;
  // Withheld after text was shown: the notice takes the answer's place, and what was shown stays,
  // folded behind it (never removed).
  const folded = moderation?.withheld === true && !streaming && (message.content !== "" || message.reasoning !== "");
  const sources = message.sources ?? null;
  return (
    <div className="message message-assistant" data-testid="assistant-message" data-status={message.status} data-message-id={message.id}>
      {/* What the answer read, as soon as the search is done: above the reasoning (DeepSeek's order). */}
      {sources ? <SearchedLine sources={sources} searched={mine ? live.searched : null} /> : null}
      {folded ? null : <ReasoningPanel key={message.id} message={message} live={mine ? live : null} />}
      {waiting ? (
        <div className="waiting" data-testid="waiting">
          {mine && live.queue ? (
            <span data-testid="queue-position">
              You are #{live.queue.position} in line, about {Math.max(1, Math.round(live.queue.estimated_wait_s))} s
            </span>
          ) : (
            <span className="typing" aria-label="Waiting for the answer">
              <i />
              <i />
              <i />
            </span>
          )}
        </div>
      ) : null}
      {moderation ? <ModerationNotices moderation={moderation} /> : null}
      {folded ? (
        <WithheldText>
          <ReasoningPanel key={message.id} message={message} live={null} />
          {message.content !== "" ? (
            <div className="answer" data-testid="answer">
              <Markdown text={message.content} sources={sources} />
            </div>
          ) : null}
        </WithheldText>
      ) : null}
      {!folded && message.content !== "" ? (
        // Not a live region: the chat's announcer (Announcer.tsx) says when the answer ends, once.
        <div className={`answer ${streaming ? "answer-streaming" : ""}`} data-testid="answer">
          <Markdown text={message.content} sources={sources} />
        </div>
      ) : null}
      {!folded && !streaming && sources && message.content !== "" ? <SourceChips sources={sources} /> : null}
      {streaming && !mine && !waiting ? <div className="status-note">Still being written…</div> : null}
      {note ? (
        <div className={`status-note status-${message.status}`} data-testid="status-note">
          {note}
        </div>
      ) : null}
      {message.status === "error" ? (
        // No role="alert": the announcer tells of a failure as it happens; an old one is not news.
        <div className="status-note status-error" data-testid="status-note">
          {message.error ?? "The answer failed."}
        </div>
      ) : null}
      {!streaming ? (
        <div className="message-actions">
          <BranchNav branch={branch} onBranch={onBranch} idle={idle} />
          <CopyButton text={message.content} />
          {isLast ? (
            <button type="button" className="btn-ghost btn-small" disabled={!idle} onClick={onRegenerate}>
              {message.status === "error" ? "Retry" : "Regenerate"}
            </button>
          ) : null}
          {message.model ? <span className="message-meta">{meta(message)}</span> : null}
        </div>
      ) : null}
    </div>
  );
}

function meta(message: Message): string {
  const parts = [message.model ?? ""];
  if (message.completion_tokens > 0) parts.push(`${message.completion_tokens} tokens`);
  if (message.total_ms !== null && message.completion_tokens > 0 && message.total_ms > 0) {
    parts.push(`${((message.completion_tokens * 1000) / message.total_ms).toFixed(1)} tok/s`);
  }
  return parts.join(" · ");
}

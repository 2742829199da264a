import { useEffect, useRef, useState, type DragEvent, type FormEvent, type KeyboardEvent } from "react";
import { DOCUMENT_ACCEPT } from "../api/files.ts";
import type { ModelInfo } from "../api/models.ts";
import { ModelDetails } from "./ModelDetails.tsx";
import type { Attachment } from "./useAttachments.ts";

export interface ComposerProps {
  models: ModelInfo[] | null;
  modelsError: string | null;
  model: string | null;
  onModel: (id: string) => void;
  thinking: boolean;
  onThinking: (on: boolean) => void;
  /** Search the web before answering. */
  search: boolean;
  onSearch: (on: boolean) => void;
  /** The plan's features (`search`, `documents`); null when not known (everything is offered). */
  features: ReadonlySet<string> | null;
  /** Documents for the next message, with their upload and indexing state. */
  attachments: Attachment[];
  onAttach: (files: File[]) => void;
  onRemoveAttachment: (key: string) => void;
  streaming: boolean;
  disabled: boolean;
  onSend: (text: string) => void;
  onStop: () => void;
  /** Text to put back (a send the server refused); a new object each time. */
  restored?: { text: string } | null;
}

/** Phones and tablets: their keyboards have no Shift+Enter, so Enter makes a new line and the button sends. */
export const touchKeyboard = () => window.matchMedia?.("(pointer: coarse)").matches ?? false;

/** The message box: Enter sends, Shift+Enter starts a new line; model picker, DeepThink, Search and attach below. */
export function Composer(props: ComposerProps) {
  const { models, model, streaming, attachments } = props;
  const [text, setText] = useState("");
  const box = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const canSearch = props.features?.has("search") ?? true;
  const canAttach = props.features?.has("documents") ?? true;
  const uploading = attachments.some((a) => a.state === "uploading");
  const current = models?.find((m) => m.id === model) ?? null;
  const canReason = current?.reasoning ?? false;

  // A refused message comes back, before anything typed since.
  const restored = props.restored;
  useEffect(() => {
    if (!restored) return;
    setText((current) => (current.trim() === "" ? restored.text : `${restored.text}\n${current}`));
    box.current?.focus();
  }, [restored]);

  // Grow with the text up to a limit, then scroll.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 240)}px`;
  }, [text]);

  const send = () => {
    if (streaming || props.disabled || uploading || text.trim() === "" || !model) return;
    props.onSend(text);
    setText("");
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing && !touchKeyboard()) {
      event.preventDefault();
      send();
    }
  };
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    send();
  };
  // Files dropped on the composer are attached as if picked.
  const onDragOver = (event: DragEvent<HTMLFormElement>) => {
    if (canAttach && event.dataTransfer?.types.includes("Files")) event.preventDefault();
  };
  const onDrop = (event: DragEvent<HTMLFormElement>) => {
    const files = [...(event.dataTransfer?.files ?? [])];
    if (!canAttach || files.length === 0) return;
    event.preventDefault();
    props.onAttach(files);
  };

  return (
    <form className="composer" onSubmit={onSubmit} onDragOver={onDragOver} onDrop={onDrop}>
      {attachments.length > 0 ? (
        <ul className="attachments" aria-label="Attached files" data-testid="attachments">
          {attachments.map((a) => (
            <AttachmentChip key={a.key} attachment={a} onRemove={() => props.onRemoveAttachment(a.key)} />
          ))}
        </ul>
      ) : null}
      <textarea
        ref={box}
        className="composer-input"
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        placeholder={touchKeyboard() ? "Message Sputnik" : "Message Sputnik (Enter to send, Shift+Enter for a new line)"}
        aria-label="Message"
        rows={1}
        autoFocus
      />
      <div className="composer-bar">
        <select
          className="model-picker"
          aria-label="Model"
          value={model ?? ""}
          onChange={(e) => props.onModel(e.target.value)}
          disabled={!models || models.length === 0}
        >
          {!models ? <option value="">{props.modelsError ? "Models unavailable" : "Loading models…"}</option> : null}
          {models && models.length === 0 ? <option value="">No models available</option> : null}
          {models?.map((m) => (
            <option key={m.id} value={m.id}>
              {m.id}
            </option>
          ))}
        </select>
        {/* The tooltip sits on a wrapper: disabled buttons get no hover events in every browser. */}
        <span title={canReason ? "DeepThink: let the model reason before it answers" : "This model cannot reason, so DeepThink is off"}>
          <button
            type="button"
            className={`toggle ${canReason && props.thinking ? "toggle-on" : ""}`}
            aria-pressed={canReason && props.thinking}
            disabled={!canReason}
            onClick={() => props.onThinking(!props.thinking)}
            data-testid="deepthink"
          >
            DeepThink
          </button>
        </span>
        <span title={canSearch ? "Search: look on the web before answering, and cite the pages read" : "Your plan does not include web search"}>
          <button
            type="button"
            className={`toggle ${canSearch && props.search ? "toggle-on" : ""}`}
            aria-pressed={canSearch && props.search}
            disabled={!canSearch}
            onClick={() => props.onSearch(!props.search)}
            data-testid="search-toggle"
          >
            Search
          </button>
        </span>
        <span title={canAttach ? "Attach documents (txt, md, html, pdf, docx) for the answer to read" : "Your plan does not include documents"}>
          <button type="button" className="btn-ghost attach-button" aria-label="Attach files" disabled={!canAttach} onClick={() => picker.current?.click()} data-testid="attach">
            <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
              <path d="M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l9-9a3.5 3.5 0 0 1 5 5l-9 9a2 2 0 0 1-3-3l8.5-8.5" />
            </svg>
          </button>
        </span>
        <input
          ref={picker}
          type="file"
          multiple
          accept={DOCUMENT_ACCEPT}
          hidden
          tabIndex={-1}
          data-testid="attach-input"
          onChange={(e) => {
            const files = [...(e.currentTarget.files ?? [])];
            // Cleared, so that picking the same file again (after removing it) still reads as a change.
            e.currentTarget.value = "";
            if (files.length > 0) props.onAttach(files);
          }}
        />
        <span className="spacer" />
        {streaming ? (
          <button type="button" className="btn-stop" onClick={props.onStop} aria-label="Stop" data-testid="stop">
            ■ Stop
          </button>
        ) : (
          <button
            type="submit"
            className="btn-primary"
            disabled={props.disabled || uploading || text.trim() === "" || !model}
            title={uploading ? "Waiting for the attached files to upload" : undefined}
            aria-label="Send"
            data-testid="send"
          >
            ↑<span className="send-label"> Send</span>
          </button>
        )}
      </div>
      <ModelDetails model={current} />
      {current?.audit ? (
        <div className="model-details" data-testid="model-audit">
          {current.audit.text}
        </div>
      ) : null}
      {current?.moderation_policies?.length ? (
        <div className="model-details" data-testid="model-moderation">
          Moderated by this server's {current.moderation_policies.length === 1 ? "policy" : "policies"}: {current.moderation_policies.join(", ")}
        </div>
      ) : null}
    </form>
  );
}

/** One attached document: its name, where its upload and indexing stand, and a button to remove it. */
function AttachmentChip({ attachment: a, onRemove }: { attachment: Attachment; onRemove: () => void }) {
  const indexed = a.file?.chunks_indexed ?? 0;
  const total = a.file?.chunks_total ?? null;
  const status =
    a.state === "uploading"
      ? "Uploading…"
      : a.state === "processing"
        ? total
          ? `Indexing ${indexed}/${total}`
          : "Indexing…"
        : a.state === "processed"
          ? "Ready"
          : (a.error ?? "Failed");
  return (
    <li className={`attachment attachment-${a.state}`} data-testid="attachment" data-state={a.state}>
      <span className="attachment-name" title={a.name}>
        {a.name}
      </span>
      <span className="attachment-status" role={a.state === "error" ? "alert" : undefined} data-testid="attachment-status">
        {status}
      </span>
      {a.state === "processing" && total ? <progress className="attachment-progress" max={total} value={indexed} aria-label={`Indexing ${a.name}`} /> : null}
      <button type="button" className="btn-ghost btn-small attachment-remove" aria-label={`Remove ${a.name}`} onClick={onRemove}>
        ×
      </button>
    </li>
  );
}

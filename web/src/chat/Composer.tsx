import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { ModelInfo } from "../api/models.ts";

export interface ComposerProps {
  models: ModelInfo[] | null;
  modelsError: string | null;
  model: string | null;
  onModel: (id: string) => void;
  thinking: boolean;
  onThinking: (on: boolean) => void;
  streaming: boolean;
  disabled: boolean;
  onSend: (text: string) => void;
  onStop: () => void;
  /** Text to put back (a send the server refused); a new object each time. */
  restored?: { text: string } | null;
}

/** Phones and tablets: their keyboards have no Shift+Enter, so Enter makes a new line and the button sends. */
const touchKeyboard = () => window.matchMedia?.("(pointer: coarse)").matches ?? false;

/** The message box: Enter sends, Shift+Enter starts a new line; model picker and DeepThink below. */
export function Composer(props: ComposerProps) {
  const { models, model, streaming } = props;
  const [text, setText] = useState("");
  const box = useRef<HTMLTextAreaElement>(null);
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
    if (streaming || props.disabled || text.trim() === "" || !model) return;
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

  return (
    <form className="composer" onSubmit={onSubmit}>
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
        <span className="spacer" />
        {streaming ? (
          <button type="button" className="btn-stop" onClick={props.onStop} aria-label="Stop" data-testid="stop">
            ■ Stop
          </button>
        ) : (
          <button type="submit" className="btn-primary" disabled={props.disabled || text.trim() === "" || !model} aria-label="Send" data-testid="send">
            ↑ Send
          </button>
        )}
      </div>
    </form>
  );
}

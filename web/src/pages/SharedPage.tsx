import { useEffect, useState } from "react";
import { getShared, type SharedConversation } from "../api/conversationFeatures.ts";
import { ApiError, describeError } from "../api/http.ts";
import { SourceChips } from "../chat/Sources.tsx";
import { Markdown } from "../markdown/Markdown.tsx";

/**
 * A conversation shared as a read-only link (`/s/<token>`), for anyone, signed in or not: the
 * snapshot the owner shared and nothing else (no sidebar, no account). Answers go through the same
 * safe markdown renderer as the chat; questions are plain text — never HTML either way.
 */
export function SharedPage({ token }: { token: string }) {
  const [state, setState] = useState<{ kind: "loading" } | { kind: "missing" } | { kind: "failed"; message: string } | { kind: "ready"; shared: SharedConversation }>({
    kind: "loading",
  });
  useEffect(() => {
    let cancelled = false;
    getShared(token)
      .then((shared) => !cancelled && setState({ kind: "ready", shared }))
      .catch((error) => {
        if (cancelled) return;
        setState(error instanceof ApiError && error.status === 404 ? { kind: "missing" } : { kind: "failed", message: describeError(error) });
      });
    return () => {
      cancelled = true;
    };
  }, [token]);

  useEffect(() => {
    if (state.kind === "ready") document.title = `${state.shared.title ?? "Shared conversation"} · Sputnik`;
  }, [state]);

  return (
    <div className="shared-page" data-testid="shared-page">
      <header className="shared-head">
        <a href="/" className="brand">
          Sputnik
        </a>
        <span className="muted small">Shared conversation · read-only</span>
      </header>
      <main className="shared-body" id="main">
        {state.kind === "loading" ? <div className="empty-state">Loading…</div> : null}
        {state.kind === "missing" ? (
          <div className="empty-state" role="alert" data-testid="shared-missing">
            This link does not exist or was revoked.
          </div>
        ) : null}
        {state.kind === "failed" ? (
          <div className="empty-state error-text" role="alert">
            {state.message}
          </div>
        ) : null}
        {state.kind === "ready" ? <SharedThread shared={state.shared} /> : null}
      </main>
    </div>
  );
}

function SharedThread({ shared }: { shared: SharedConversation }) {
  const when = new Date(shared.shared_at).toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
  return (
    <article className="thread-inner">
      <h1 className="shared-title" data-testid="shared-title">
        {shared.title ?? "Shared conversation"}
      </h1>
      <p className="muted small">
        Shared {shared.author ? <>by <span data-testid="shared-author">{shared.author}</span> </> : null}on {when}
      </p>
      {shared.messages.map((m, i) =>
        m.role === "user" ? (
          <div key={i} className="message message-user" data-testid="shared-message" data-role="user">
            <div className="bubble">{m.content}</div>
          </div>
        ) : (
          <div key={i} className="message message-assistant" data-testid="shared-message" data-role="assistant">
            {m.reasoning ? (
              <details className="reasoning" data-testid="shared-reasoning">
                <summary className="reasoning-toggle">Reasoning</summary>
                <div className="reasoning-text">{m.reasoning}</div>
              </details>
            ) : null}
            {m.content !== "" ? (
              <div className="answer">
                <Markdown text={m.content} sources={m.sources} />
              </div>
            ) : null}
            {/* Web pages link to themselves; documents show their name only (the visitor may not read them). */}
            {m.sources && m.content !== "" ? <SourceChips sources={m.sources} /> : null}
            {m.status !== "complete" ? <div className="status-note">{m.status === "stopped" ? "Stopped" : m.status === "error" ? "The answer failed." : "Cut short"}</div> : null}
            {m.model ? <div className="message-meta muted small">{m.model}</div> : null}
          </div>
        ),
      )}
    </article>
  );
}

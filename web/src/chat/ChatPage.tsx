import { Suspense, useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import { siblingsOf } from "../../../src/chat/messageTree.ts";
import type { ModelInfo } from "../api/models.ts";
import { planFeatures } from "../api/planFeatures.ts";
import { Composer } from "./Composer.tsx";
import { AnswerAnnouncer } from "./Announcer.tsx";
import { ChatMenu } from "./ChatMenu.tsx";
import { MessageView, prefetchThread, prefetchThreadAfterLoad } from "./threadChunks.ts";
import { rememberConversation, takeOffered } from "./libraryHandoff.ts";
import { useAttachments } from "./useAttachments.ts";
import { useChat, type ChatNotice } from "./useChat.ts";

export interface ChatPageProps {
  conversationId: string | null;
  models: ModelInfo[] | null;
  modelsError: string | null;
  onListChanged: () => void;
}

const MODEL_KEY = "sputnik.model";
const THINKING_KEY = "sputnik.deepthink";
/** Search is remembered like DeepThink: for this browser, across conversations. */
const SEARCH_KEY = "sputnik.search";

/** One conversation (or a new one at `/`): the thread, notices and the composer. */
export function ChatPage({ conversationId, models, modelsError, onListChanged }: ChatPageProps) {
  const [model, setModel] = useState<string | null>(() => localStorage.getItem(MODEL_KEY));
  const [thinking, setThinking] = useState(() => localStorage.getItem(THINKING_KEY) !== "off");
  const [search, setSearch] = useState(() => localStorage.getItem(SEARCH_KEY) === "on");
  const [features, setFeatures] = useState<ReadonlySet<string> | null>(null);
  useEffect(() => {
    let live = true;
    void planFeatures().then((f) => live && setFeatures(f));
    return () => {
      live = false;
    };
  }, []);
  // A plan without search never sends it, whatever this browser remembers.
  const searching = search && (features?.has("search") ?? true);

  // Documents attached to the next message; a refused message gets its documents back as well as its text.
  const attachments = useAttachments(conversationId);
  const restoreAttachments = attachments.restore;
  // Files sent here from the Documents page ("Use in chat") become chips; the library learns where the chat is.
  const adoptAttachments = attachments.adopt;
  useEffect(() => adoptAttachments(takeOffered()), [adoptAttachments]);
  useEffect(() => rememberConversation(conversationId), [conversationId]);
  // Text the server did not take comes back into the composer (a new object each time, even for the same text).
  const [restored, setRestored] = useState<{ text: string } | null>(null);
  const onRefused = useCallback((text: string) => {
    setRestored({ text });
    restoreAttachments();
  }, []);
  const chat = useChat({ conversationId, model, thinking, search: searching, onListChanged, onRefused });

  // Opening a conversation picks the model it was last answered with (if still served), so a reply
  // never silently switches models; a new chat goes back to the last model picked by hand.
  const followed = useRef<string | null>(null);
  useEffect(() => {
    const conv = chat.conversation;
    if (!conv) {
      if (followed.current !== null) setModel((current) => localStorage.getItem(MODEL_KEY) ?? current);
      followed.current = null;
      return;
    }
    if (chat.loading || !models || followed.current === conv.id) return;
    followed.current = conv.id;
    const used = chat.thread.findLast((m) => m.role === "assistant" && m.model)?.model ?? conv.model;
    if (used && models.some((m) => m.id === used)) setModel(used);
  }, [chat.conversation, chat.loading, chat.thread, models]);

  // A conversation to show: fetch its views beside the conversation itself, not after it.
  useEffect(() => (conversationId ? prefetchThread() : prefetchThreadAfterLoad()), [conversationId]);

  // Keep the chosen model valid: the remembered one if still served, else the conversation's, else the first.
  useEffect(() => {
    if (!models || models.length === 0) return;
    if (model && models.some((m) => m.id === model)) return;
    const fallback = models.find((m) => m.id === chat.conversation?.model) ?? models[0]!;
    setModel(fallback.id);
  }, [models, model, chat.conversation?.model]);

  const chooseModel = (id: string) => {
    setModel(id);
    localStorage.setItem(MODEL_KEY, id);
  };
  const chooseThinking = (on: boolean) => {
    setThinking(on);
    localStorage.setItem(THINKING_KEY, on ? "on" : "off");
  };
  const chooseSearch = (on: boolean) => {
    setSearch(on);
    localStorage.setItem(SEARCH_KEY, on ? "on" : "off");
  };

  // Esc stops the answer being written, wherever the focus is.
  const { stop, live } = chat;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && live) {
        event.preventDefault();
        void stop();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [stop, live]);

  const scroller = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (el) pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }, []);
  // Follow the stream while the reader is at the bottom; leave them be when they scrolled up.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [chat.thread]);

  const last = chat.thread.at(-1);
  const idle = chat.live === null;

  return (
    <div className="chat">
      {chat.conversation && !chat.loading ? <ChatMenu conversation={chat.conversation} /> : null}
      <div className="thread" ref={scroller} onScroll={onScroll} data-testid="thread">
        <div className="thread-inner">
          {chat.loading ? <div className="empty-state">Loading the conversation…</div> : null}
          {chat.loadError ? (
            <div className="empty-state error-text" role="alert">
              {chat.loadError}
            </div>
          ) : null}
          {!chat.loading && !chat.loadError && chat.thread.length === 0 ? (
            <div className="empty-state welcome">
              <h1>How can I help you today?</h1>
              <p>Ask anything. Turn on DeepThink to watch the model reason before it answers, Search to look on the web, or attach documents to ask about them.</p>
            </div>
          ) : null}
          <Suspense fallback={chat.thread.length > 0 ? <div className="empty-state">Loading the conversation…</div> : null}>
            {chat.thread.map((message) => {
              const siblings = siblingsOf(chat.messages, message);
              return (
                <MessageView
                  key={message.id}
                  message={message}
                  branch={{ index: siblings.indexOf(message) + 1, count: siblings.length }}
                  live={chat.live}
                  idle={idle}
                  isLast={message === last}
                  onBranch={(offset) => chat.showSibling(message, offset)}
                  onRegenerate={() => void chat.regenerate(message)}
                  onEdit={(content) => void chat.edit(message, content)}
                />
              );
            })}
          </Suspense>
        </div>
      </div>
      <AnswerAnnouncer thread={chat.thread} liveId={chat.live?.assistantId ?? null} />
      {chat.notice ? <NoticeBar notice={chat.notice} onCancel={chat.cancelRetry} onDismiss={chat.dismissNotice} /> : null}
      <Composer
        models={models}
        modelsError={modelsError}
        model={model}
        onModel={chooseModel}
        thinking={thinking}
        onThinking={chooseThinking}
        search={searching}
        onSearch={chooseSearch}
        features={features}
        attachments={attachments.attachments}
        onAttach={attachments.add}
        onRemoveAttachment={attachments.remove}
        streaming={!idle}
        disabled={Boolean(chat.loadError) || chat.loading}
        onSend={(text) => void chat.send(text, last?.id ?? null, attachments.take())}
        restored={restored}
        onStop={() => void chat.stop()}
      />
    </div>
  );
}

function NoticeBar({ notice, onCancel, onDismiss }: { notice: ChatNotice; onCancel: () => void; onDismiss: () => void }) {
  const seconds = useCountdown(notice.kind === "busy" ? notice.retryAt : null);
  if (notice.kind === "busy") {
    return (
      <div className="notice notice-warn" role="status" data-testid="notice">
        Server busy — retrying in {seconds} s
        <button type="button" className="btn-ghost btn-small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    );
  }
  if (notice.kind === "connection-lost") {
    return (
      <div className="notice notice-warn" role="status" data-testid="notice">
        Connection lost. What was written so far is saved; it will show when the connection is back.
      </div>
    );
  }
  return (
    <div className="notice notice-error" role="alert" data-testid="notice">
      {notice.text}
      <button type="button" className="btn-ghost btn-small" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

function useCountdown(until: number | null): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (until === null) return;
    const timer = window.setInterval(() => setNow(Date.now()), 250);
    return () => window.clearInterval(timer);
  }, [until]);
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}

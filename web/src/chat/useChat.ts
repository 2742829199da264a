import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { EMPTY_ANSWER } from "../../../src/chat/emptyAnswer.ts";
import { defaultLeaf, newestLeafUnder, pathTo, siblingsOf } from "../../../src/chat/messageTree.ts";
import {
  createConversation,
  deleteConversation,
  getConversation,
  loadReplyStream,
  selectBranch,
  stopReply,
  type Conversation,
  type Message,
  type ReplyEvent,
  type ReplyRequest,
} from "../api/conversations.ts";
import { ApiError, describeError, NetworkError } from "../api/http.ts";
import type { Searched } from "../api/sources.ts";
import { navigate } from "../router.tsx";

/** What is happening right now in the thread, beyond the stored messages. */
export type ChatNotice =
  | { kind: "busy"; retryAt: number; detail: string }
  | { kind: "error"; text: string }
  | { kind: "connection-lost" };

export interface LiveReply {
  assistantId: string | null;
  /** Set from the stream's `queue` events while the request waits for a free slot. */
  queue: { position: number; estimated_wait_s: number } | null;
  reasoningStartedAt: number | null;
  reasoningEndedAt: number | null;
  stopping: boolean;
  /** From the stream's `sources` event: what the search did (the sources themselves go on the message). */
  searched: Searched | null;
}

/** How `follow` listens: a send (`body`) or a re-attach (`assistantId`, resuming after `after`). */
interface FollowContext {
  body: ReplyRequest | null;
  attempt: number;
  tempIds: string[];
  assistantId: string | null;
  after: number | null;
  /** After a broken connection: the first event back clears "Connection lost" and reloads the thread. */
  reconnecting: boolean;
}

export interface ChatOptions {
  conversationId: string | null;
  model: string | null;
  thinking: boolean;
  /** Search the web before answering (the composer's Search toggle). */
  search: boolean;
  /** Called when the sidebar should refresh (new conversation, new title, new activity). */
  onListChanged: () => void;
  /** A message that was not sent after all (refused, or its busy retry cancelled): back into the composer. */
  onRefused: (text: string) => void;
}

/** The server's bound on one message (src/http/app/conversations.ts): checked here first, so nothing is created for it. */
export const MAX_MESSAGE_CHARS = 100_000;

const MAX_BUSY_RETRIES = 5;
/** Re-attach delay to an answer whose stream ended early while it is still being written. */
const POLL_STREAMING_MS = 2000;
/**
 * The longest wait between two reconnect tries while the server is away: a restart takes seconds,
 * and one small GET per open page every few seconds costs the server nothing worth saving.
 */
const MAX_RECONNECT_MS = 4_000;
const TEMP_PREFIX = "pending-";

/** The request's search fields, only when used: a plain message reads as it did before search existed. */
function searchOptions(search: boolean, fileIds: string[] | undefined): { search?: true; file_ids?: string[] } {
  return { ...(search ? { search: true as const } : {}), ...(fileIds && fileIds.length > 0 ? { file_ids: fileIds } : {}) };
}

/** The server's bound on `file_ids` (src/http/openai/chatCompletionSchema.ts MAX_REQUEST_FILE_IDS). */
const MAX_FILE_IDS = 20;

/**
 * The documents question `questionId` was asked with, so that regenerating its answer or editing
 * it reads them again: the ids this page sent with it, and those its answers cite (file sources,
 * stored with each answer, so this holds after a reload too).
 */
export function documentsOf(messages: readonly Message[], questionId: string | null, sent: ReadonlyMap<string, readonly string[]>): string[] {
  if (questionId === null) return [];
  const ids = new Set(sent.get(questionId) ?? []);
  for (const m of messages) {
    if (m.role !== "assistant" || m.parent_id !== questionId) continue;
    for (const source of m.sources ?? []) if (source.kind === "file" && source.file_id) ids.add(source.file_id);
  }
  return [...ids].slice(0, MAX_FILE_IDS);
}

/** The stream chunk; a failure to fetch it is a connection problem like any other. */
async function loadStream() {
  try {
    return await loadReplyStream();
  } catch (error) {
    throw new NetworkError(error);
  }
}

/**
 * One conversation's state and actions: loading, sending with a live stream, stop, regenerate,
 * edit-and-resend, branch switching, busy-server retries and reconnects.
 */
export function useChat(options: ChatOptions) {
  const { conversationId, onListChanged } = options;
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [leafId, setLeafId] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [live, setLive] = useState<LiveReply | null>(null);
  const [notice, setNotice] = useState<ChatNotice | null>(null);

  const abortRef = useRef<AbortController | null>(null);
  const liveRef = useRef<LiveReply | null>(null);
  liveRef.current = live;
  const settingsRef = useRef(options);
  settingsRef.current = options;
  /** The conversation this hook created itself: navigating to it must not reload over the stream. */
  const createdRef = useRef<string | null>(null);
  const retryTimer = useRef<number | undefined>(undefined);
  /** Messages shown while a busy retry waits; dropped if the retry is cancelled. */
  const retryTemps = useRef<string[]>([]);
  /** The text a waiting busy retry would send, and its conversation: given back if the retry is cancelled. */
  const retryDraft = useRef<{ conversationId: string; text: string } | null>(null);
  /** A conversation this hook just created for a message the server has not accepted yet. */
  const freshRef = useRef<string | null>(null);
  /** A pending re-attach (after a broken or early-ended stream), its backoff step, and its answer. */
  const reconnectTimer = useRef<number | undefined>(undefined);
  const reconnectAttempt = useRef(0);
  const lastAssistant = useRef<string | null>(null);
  /** A notice to show after navigating away from a discarded conversation (navigation clears notices). */
  const carryNotice = useRef<ChatNotice | null>(null);
  /** The documents each question of this page's was sent with (by the server's message id): see `documentsOf`. */
  const sentFiles = useRef(new Map<string, readonly string[]>());
  const messagesRef = useRef<Message[]>([]);

  const load = useCallback(async (id: string, quiet = false) => {
    if (!quiet) setLoading(true);
    try {
      const result = await getConversation(id);
      setConversation(result.conversation);
      setMessages(result.messages);
      const remembered = result.conversation.current_message_id;
      setLeafId(remembered && result.messages.some((m) => m.id === remembered) ? remembered : (defaultLeaf(result.messages)?.id ?? null));
      setLoadError(null);
    } catch (error) {
      if (!quiet) setLoadError(error instanceof ApiError && error.status === 404 ? "This conversation does not exist (or is not yours)." : describeError(error));
    } finally {
      if (!quiet) setLoading(false);
    }
  }, []);

  // Switching conversations: stop listening to the old stream, load the new one.
  useEffect(() => {
    window.clearTimeout(retryTimer.current);
    window.clearTimeout(reconnectTimer.current);
    reconnectTimer.current = undefined;
    reconnectAttempt.current = 0;
    setNotice(carryNotice.current);
    carryNotice.current = null;
    if (conversationId !== null && conversationId === createdRef.current) return;
    abortRef.current?.abort();
    abortRef.current = null;
    setLive(null);
    createdRef.current = null;
    if (conversationId === null) {
      setConversation(null);
      setMessages([]);
      setLeafId(null);
      setLoadError(null);
      return;
    }
    void load(conversationId);
  }, [conversationId, load]);

  useEffect(
    () => () => {
      abortRef.current?.abort();
      window.clearTimeout(reconnectTimer.current);
    },
    [],
  );

  // Deltas arrive far faster than the screen refreshes: collect them and apply once per frame.
  const pending = useRef({ reasoning: "", content: "", frame: 0 });
  const flushDeltas = useCallback(() => {
    const p = pending.current;
    cancelAnimationFrame(p.frame);
    p.frame = 0;
    const id = liveRef.current?.assistantId;
    if (!id || (p.reasoning === "" && p.content === "")) return;
    const { reasoning, content } = p;
    p.reasoning = "";
    p.content = "";
    setMessages((list) => list.map((m) => (m.id === id ? { ...m, reasoning: m.reasoning + reasoning, content: m.content + content } : m)));
  }, []);

  /** Puts the server's copy of a message in place; one that leaves `sources` out keeps those its stream sent. */
  const replaceMessage = (message: Message) =>
    setMessages((list) => {
      const old = list.find((m) => m.id === message.id);
      if (!old) return [...list, message];
      const next = message.sources === undefined && old.sources ? { ...message, sources: old.sources } : message;
      return list.map((m) => (m.id === message.id ? next : m));
    });

  /**
   * Listens to one answer's stream (a send's, or a re-attach to one being written) until it ends.
   * Leaving only stops the listening: the server goes on writing. A broken connection shows
   * "Connection lost" and re-attaches with backoff; the first event back clears the notice.
   */
  const follow = useCallback(
    async (conv: Conversation, open: (onEvent: (event: ReplyEvent, id: number | null) => void, signal: AbortSignal) => Promise<number | null>, ctx: FollowContext) => {
      const abort = new AbortController();
      abortRef.current = abort;
      window.clearTimeout(reconnectTimer.current);
      reconnectTimer.current = undefined;
      const state: LiveReply = { assistantId: ctx.assistantId, queue: null, reasoningStartedAt: null, reasoningEndedAt: null, stopping: false, searched: null };
      liveRef.current = state;
      setLive(state);
      if (ctx.body) setNotice(null);
      const update = (patch: Partial<LiveReply>) => {
        if (abortRef.current !== abort) return;
        const next = { ...liveRef.current!, ...patch };
        liveRef.current = next;
        setLive(next);
      };
      const { body, attempt, tempIds } = ctx;
      let retry: { seconds: number; body: ReplyRequest; tempIds: string[] } | null = null;
      let lastId = ctx.after;
      /** The answer reached its end (done, error, or a snapshot of a stored, finished one). */
      let settled = false;
      let heard = false;
      /** The connection broke (or the server is restarting): re-attach with backoff. */
      let broken = false;

      const onEvent = (event: ReplyEvent, id: number | null) => {
        if (abortRef.current !== abort) return;
        if (id !== null) lastId = id;
        if (!heard) {
          heard = true;
          reconnectAttempt.current = 0;
          if (ctx.reconnecting) {
            // Back after a broken connection (maybe a restarted server): show what changed meanwhile.
            setNotice((n) => (n?.kind === "connection-lost" ? null : n));
            void load(conv.id, true);
            onListChanged();
          }
        }
        switch (event.type) {
          case "start": {
            const started = [event.user_message, event.assistant_message].filter((m): m is Message => m !== null);
            setMessages((list) => {
              const kept = list.filter((m) => !tempIds.includes(m.id) && !started.some((s) => s.id === m.id));
              return [...kept, ...started];
            });
            setLeafId(event.assistant_message.id);
            if (freshRef.current === conv.id) freshRef.current = null;
            if (event.user_message && body?.file_ids?.length) sentFiles.current.set(event.user_message.id, body.file_ids);
            lastAssistant.current = event.assistant_message.id;
            const stopAsked = liveRef.current?.stopping === true;
            update({ assistantId: event.assistant_message.id });
            // Stop was pressed before the answer existed: stop it now that it does.
            if (stopAsked) void stopReply(conv.id, event.assistant_message.id).catch(() => undefined);
            onListChanged();
            break;
          }
          case "snapshot": {
            // The answer as it stands: it replaces whatever this page had (deltas held back included).
            pending.current.reasoning = "";
            pending.current.content = "";
            replaceMessage(event.message);
            const now = performance.now();
            const started = event.reasoning_ms === null ? null : now - event.reasoning_ms;
            update({
              assistantId: event.message.id,
              queue: event.queue,
              reasoningStartedAt: started,
              reasoningEndedAt: started !== null && event.reasoning_done ? now : null,
            });
            if (event.message.status !== "streaming") settled = true;
            break;
          }
          case "queue":
            update({ queue: { position: event.position, estimated_wait_s: event.estimated_wait_s } });
            break;
          case "sources": {
            // Before the reasoning: the answer's message carries them from now on, as it will once stored.
            const id = liveRef.current?.assistantId;
            const sources = event.sources;
            if (id) setMessages((list) => list.map((m) => (m.id === id ? { ...m, sources } : m)));
            update({ searched: event.searched, queue: null });
            break;
          }
          case "reasoning":
            if (liveRef.current?.reasoningStartedAt === null) update({ reasoningStartedAt: performance.now(), queue: null });
            pending.current.reasoning += event.text;
            pending.current.frame ||= requestAnimationFrame(flushDeltas);
            break;
          case "content":
            if (liveRef.current?.reasoningStartedAt !== null && liveRef.current?.reasoningEndedAt === null) {
              update({ reasoningEndedAt: performance.now() });
            }
            if (liveRef.current?.queue) update({ queue: null });
            pending.current.content += event.text;
            pending.current.frame ||= requestAnimationFrame(flushDeltas);
            break;
          case "title":
            setConversation((c) => (c && c.id === event.conversation_id ? { ...c, title: event.title } : c));
            onListChanged();
            break;
          case "done":
            settled = true;
            flushDeltas();
            replaceMessage(event.message);
            break;
          case "error":
            settled = true;
            flushDeltas();
            if (event.message) replaceMessage(event.message);
            if (event.error.code === "server_restarting") {
              // The answer is stored as interrupted (its note says so); the page reconnects when the server is back.
              setNotice({ kind: "connection-lost" });
              broken = true;
            } else if (body && event.error.retry_after_s && event.message && attempt < MAX_BUSY_RETRIES) {
              retry = {
                seconds: event.error.retry_after_s,
                body: { regenerate: event.message.id, model: body.model, thinking: body.thinking, ...searchOptions(body.search === true, body.file_ids) },
                tempIds: [],
              };
            } else if (event.message?.status !== "error") {
              // A stored failed answer shows its error under itself (MessageView): not in the bar too.
              setNotice({ kind: "error", text: event.error.message });
            }
            break;
        }
      };

      try {
        lastId = await open(onEvent, abort.signal);
      } catch (error) {
        flushDeltas();
        if ((error as Error).name === "AbortError") {
          // Navigated away: the answer goes on on the server, nothing to show here.
        } else if (body && error instanceof ApiError && error.busy && attempt < MAX_BUSY_RETRIES) {
          retry = { seconds: error.retryAfterS ?? 5, body, tempIds };
        } else if (
          (error instanceof NetworkError && liveRef.current?.assistantId) ||
          // A server coming back (starting up, or draining before its restart) answers 503 for a while: still away.
          (ctx.reconnecting && error instanceof ApiError && error.busy)
        ) {
          setNotice({ kind: "connection-lost" });
          broken = true;
        } else if (body) {
          setMessages((list) => list.filter((m) => !tempIds.includes(m.id)));
          refused(conv.id, "content" in body ? body.content : null, { kind: "error", text: describeError(error) });
        } else if (!(error instanceof ApiError && error.status === 404)) {
          setNotice({ kind: "error", text: describeError(error) });
        }
      } finally {
        flushDeltas();
        if (abortRef.current === abort) {
          abortRef.current = null;
          liveRef.current = null;
          setLive(null);
        }
      }
      if (abort.signal.aborted) return;

      // The stream broke, the server restarts, or it ended early (a dropped watcher, another server writing it): re-attach.
      const watched = lastAssistant.current;
      if (watched && (broken || (!settled && !retry))) scheduleAttach(conv, watched, settled ? null : lastId, broken || ctx.reconnecting);

      if (retry) {
        const { seconds, body: again, tempIds: waiting } = retry;
        retryTemps.current = waiting;
        retryDraft.current = "content" in again ? { conversationId: conv.id, text: again.content } : null;
        setNotice({ kind: "busy", retryAt: Date.now() + seconds * 1000, detail: "The server is busy." });
        retryTimer.current = window.setTimeout(() => {
          retryTemps.current = [];
          retryDraft.current = null;
          setNotice(null);
          void runRef.current(conv, again, attempt + 1, waiting);
        }, seconds * 1000);
      }
    },
    [flushDeltas, onListChanged, load],
  );

  /** Re-attaches to `assistantId` after a backoff (doubling from 0.5 s to 10 s while the server stays away). */
  const scheduleAttach = (conv: Conversation, assistantId: string, after: number | null, reconnecting: boolean) => {
    window.clearTimeout(reconnectTimer.current);
    const n = reconnectAttempt.current++;
    const delay = reconnecting ? Math.min(MAX_RECONNECT_MS, 500 * 2 ** n) * (0.75 + Math.random() * 0.5) : POLL_STREAMING_MS;
    reconnectTimer.current = window.setTimeout(() => {
      reconnectTimer.current = undefined;
      if (liveRef.current) return;
      attach(conv, assistantId, after, reconnecting);
    }, delay);
  };

  const attach = (conv: Conversation, id: string, after: number | null, reconnecting: boolean) => {
    lastAssistant.current = id;
    void follow(conv, async (onEvent, signal) => (await loadStream()).attachReply(conv.id, id, after, onEvent, signal), { body: null, attempt: 0, tempIds: [], assistantId: id, after, reconnecting });
  };

  const run = useCallback(
    (conv: Conversation, body: ReplyRequest, attempt: number, tempIds: string[]) => {
      lastAssistant.current = null;
      return follow(conv, async (onEvent, signal) => (await loadStream()).streamReply(conv.id, body, onEvent, signal), { body, attempt, tempIds, assistantId: null, after: null, reconnecting: false });
    },
    [follow],
  );
  const runRef = useRef(run);
  runRef.current = run;

  // An answer being written that this page does not listen to (opened mid-answer, a reload, another
  // tab's): attach to its live stream.
  const unwatched = live === null && conversation ? messages.find((m) => m.role === "assistant" && m.status === "streaming")?.id : undefined;
  useEffect(() => {
    if (!unwatched || !conversation || liveRef.current || reconnectTimer.current !== undefined) return;
    attach(conversation, unwatched, null, false);
  }, [unwatched, conversation, follow]);

  // Back online after a broken stream: try again now rather than at the next backoff step.
  useEffect(() => {
    const onOnline = () => {
      if (!conversation) return;
      if (reconnectTimer.current !== undefined && lastAssistant.current) {
        reconnectAttempt.current = 0;
        scheduleAttach(conversation, lastAssistant.current, null, true);
      } else if (live === null) {
        void load(conversation.id, true);
        if (notice?.kind === "connection-lost") setNotice(null);
      }
    };
    window.addEventListener("online", onOnline);
    return () => window.removeEventListener("online", onOnline);
  }, [conversation, notice, live, load]);

  /**
   * A message the server did not take: its text goes back to the composer, and a conversation
   * created just for it (so still empty) is deleted rather than left in the sidebar.
   */
  function refused(conversationId: string, text: string | null, next: ChatNotice | null) {
    if (text !== null) settingsRef.current.onRefused(text);
    if (freshRef.current === conversationId) {
      freshRef.current = null;
      carryNotice.current = next;
      deleteConversation(conversationId)
        .catch(() => undefined)
        .finally(() => settingsRef.current.onListChanged());
      navigate("/", { replace: true });
    }
    setNotice(next);
  }

  /** Cancels a waiting busy retry; `giveBack` returns its text to the composer (the user pressed Cancel). */
  const dropRetry = useCallback((giveBack: boolean) => {
    window.clearTimeout(retryTimer.current);
    const temps = retryTemps.current;
    const draft = retryDraft.current;
    retryTemps.current = [];
    retryDraft.current = null;
    if (temps.length > 0) setMessages((list) => list.filter((m) => !temps.includes(m.id)));
    if (giveBack && draft) refused(draft.conversationId, draft.text, null);
    else setNotice(null);
  }, []);
  const cancelRetry = useCallback(() => dropRetry(true), [dropRetry]);

  const thread = useMemo(() => pathTo(messages, leafId), [messages, leafId]);
  messagesRef.current = messages;

  /**
   * Sends `content` after `parentId` (the current leaf for a new message; the edited message's
   * parent for an edit), with the documents `fileIds` for the answer to read.
   */
  const send = useCallback(
    async (content: string, parentId: string | null, fileIds: string[] = []) => {
      const { model, thinking, search } = settingsRef.current;
      if (!model || liveRef.current) return;
      dropRetry(false);
      if (content.length > MAX_MESSAGE_CHARS) {
        settingsRef.current.onRefused(content);
        const over = new Intl.NumberFormat().format(content.length - MAX_MESSAGE_CHARS);
        setNotice({
          kind: "error",
          text: `This message is too long to send: ${new Intl.NumberFormat().format(MAX_MESSAGE_CHARS)} characters at most (it is ${over} over). Shorten it or send it in parts.`,
        });
        return;
      }
      let conv = conversation;
      if (!conv) {
        try {
          conv = await createConversation(model);
        } catch (error) {
          settingsRef.current.onRefused(content);
          setNotice({ kind: "error", text: describeError(error) });
          return;
        }
        createdRef.current = conv.id;
        freshRef.current = conv.id;
        setConversation(conv);
        navigate(`/c/${conv.id}`);
        onListChanged();
      }
      const now = new Date().toISOString();
      const temp: Message = {
        id: `${TEMP_PREFIX}${Date.now()}`,
        conversation_id: conv.id,
        parent_id: parentId,
        role: "user",
        ...EMPTY_ANSWER,
        content,
        model: null,
        thinking,
        status: "complete",
        created_at: now,
        updated_at: now,
      };
      setMessages((list) => [...list, temp]);
      setLeafId(temp.id);
      await run(conv, { content, parent_id: parentId, model, thinking, ...searchOptions(search, fileIds) }, 0, [temp.id]);
    },
    [conversation, run, onListChanged, dropRetry],
  );

  const regenerate = useCallback(
    async (assistant: Message) => {
      const { model, thinking, search } = settingsRef.current;
      if (!conversation || !model || liveRef.current) return;
      dropRetry(false);
      // The same documents as the question had: the answer again, from what it was asked about.
      const fileIds = documentsOf(messagesRef.current, assistant.parent_id, sentFiles.current);
      await run(conversation, { regenerate: assistant.id, model, thinking, ...searchOptions(search, fileIds) }, 0, []);
    },
    [conversation, run, dropRetry],
  );

  /** Edit-and-resend: a new sibling of `question` with `content`, reading the documents `question` had. */
  const edit = useCallback(
    (question: Message, content: string) => send(content, question.parent_id, documentsOf(messagesRef.current, question.id, sentFiles.current)),
    [send],
  );

  const stop = useCallback(async () => {
    const current = liveRef.current;
    if (!current || current.stopping || !conversation) return;
    liveRef.current = { ...current, stopping: true };
    setLive(liveRef.current);
    // Not started yet: the `start` event stops it as soon as it exists (leaving would not: answers outlive the page).
    if (!current.assistantId) return;
    try {
      // The server stores the partial answer as stopped, then ends the stream with `done`.
      await stopReply(conversation.id, current.assistantId);
    } catch (error) {
      liveRef.current = liveRef.current ? { ...liveRef.current, stopping: false } : null;
      setLive(liveRef.current);
      setNotice({ kind: "error", text: describeError(error) });
    }
  }, [conversation]);


  const showSibling = useCallback(
    (message: Message, offset: -1 | 1) => {
      if (liveRef.current || !conversation) return;
      const siblings = siblingsOf(messages, message);
      const target = siblings[siblings.indexOf(message) + offset];
      if (!target) return;
      const leaf = newestLeafUnder(messages, target.id) ?? target;
      setLeafId(leaf.id);
      selectBranch(conversation.id, leaf.id).catch((error) => setNotice({ kind: "error", text: describeError(error) }));
    },
    [conversation, messages],
  );

  return {
    conversation,
    messages,
    thread,
    loading,
    loadError,
    live,
    notice,
    send,
    edit,
    regenerate,
    stop,
    cancelRetry,
    showSibling,
    dismissNotice: () => setNotice(null),
  };
}

export type Chat = ReturnType<typeof useChat>;

import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import {
  InvalidCursorError,
  MAX_PINNED,
  createConversation,
  deleteConversation,
  findConversation,
  findMessage,
  listConversations,
  listMessages,
  updateConversation,
  type Message,
} from "../../chat/conversations.ts";
import { MAX_TITLE_LENGTH } from "../../chat/conversationTitle.ts";
import { applySettingsPatch, parseSettings, settingsPatchSchema } from "../../chat/conversationSettings.ts";
import { MAX_QUERY_CHARS, searchConversations } from "../../chat/search.ts";
import { FREE_PLAN_ID, resolvePlan } from "../../billing/plans.ts";
import { presentSearchResult } from "../../presenters/conversationShare.ts";
import { registerConversationFeatures } from "./conversationFeatures.ts";
import type { ModelRouter } from "../../engines/router.ts";
import { identityOf } from "../../limits/identity.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentConversation, presentMessage, presentReplyEvent } from "../../presenters/conversation.ts";
import type { Serving } from "../../serving/completion.ts";
import { ConversationReplies, replyGeneration, type Reply, type ReplyEvent, type ReplyInput } from "../../serving/conversationReplies.ts";
import type { ReplyChannel } from "../../serving/replyChannel.ts";
import type { Store } from "../../store/database.ts";
import { ApiError, toApiError } from "../errors.ts";
import { SseWriter } from "../sse.ts";
import { MAX_REQUEST_FILE_IDS } from "../openai/chatCompletionSchema.ts";

/**
 * The web app's conversations API (signed-in sessions; the auth hook enforces sign-in and CSRF,
 * src/policies/conversations.ts decides whose conversation is whose):
 *
 *   GET    /api/conversations?q=&limit=&cursor=        pinned first, then newest first; with q: a search
 *          of titles and message text (src/chat/search.ts), each row with the message that matched
 *   POST   /api/conversations {model?}                  → 201 conversation
 *   GET    /api/conversations/:id                       → {conversation, messages}
 *   PATCH  /api/conversations/:id {title?, current_message_id?, settings?, pinned?}
 *   DELETE /api/conversations/:id                       → 204
 *   POST   /api/conversations/:id/messages              SSE stream of ReplyEvent (see conversationReplies.ts)
 *          {content, parent_id, model, thinking} sends; {regenerate: messageId, model, thinking} answers again;
 *          `search: true` searches the web and `file_ids` reads the user's documents for it (a
 *          `sources` event after `start`; the sources are stored with the answer)
 *   GET    /api/conversations/:id/messages/:messageId/stream?after=  re-attaches to a running answer:
 *          a `snapshot` (the text so far) then live events, or the events after `after` (an SSE id)
 *          while the server still holds them; an answer not running here: one snapshot of the stored one
 *   POST   /api/conversations/:id/messages/:messageId/stop  → the stored (stopped) message
 *
 * Settings, export and share links: conversationFeatures.ts.
 *
 * An answer belongs to the server, not to the tab: the page going away (another chat, a reload,
 * a closed tab) only stops the watching; Stop, and server shutdown, end the generation.
 */

const MAX_CONTENT_CHARS = 100_000;
const KEEPALIVE_MS = 15_000;
/**
 * A watcher whose socket holds this much unsent (a stalled client) is dropped rather than
 * buffered for: it re-attaches and gets a snapshot.
 */
const MAX_UNSENT_BYTES = 1 << 20;

const idSchema = z.string().min(1).max(64);
const listQuery = z.object({
  q: z.string().max(MAX_QUERY_CHARS, `the search is too long: at most ${MAX_QUERY_CHARS} characters`).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});
const createBody = z.object({ model: z.string().min(1).max(256).nullable().optional() }).nullable().optional();
const patchBody = z
  .object({
    title: z.string().trim().min(1, "title must not be empty").max(MAX_TITLE_LENGTH * 4).optional(),
    current_message_id: idSchema.optional(),
    settings: settingsPatchSchema.optional(),
    pinned: z.boolean().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), "send title, current_message_id, settings or pinned");
const replyBody = z
  .object({
    content: z
      .string()
      .max(MAX_CONTENT_CHARS, `The message is too long: at most ${MAX_CONTENT_CHARS.toLocaleString("en")} characters. Shorten it or send it in parts.`)
      .optional(),
    parent_id: idSchema.nullable().optional(),
    regenerate: idSchema.optional(),
    model: z.string().min(1).max(256),
    thinking: z.boolean().default(true),
    /** Search the web for this answer (the Search toggle). */
    search: z.boolean().default(false),
    /** The user's documents to answer from (POST /api/files). */
    file_ids: z.array(idSchema).max(MAX_REQUEST_FILE_IDS, `file_ids may name at most ${MAX_REQUEST_FILE_IDS} files`).default([]),
  })
  .refine((b) => (b.content !== undefined) !== (b.regenerate !== undefined), "send either content or regenerate");
const attachQuery = z.object({ after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() });

export interface ConversationRoutesDeps {
  store: Store;
  /** The models the picker may offer (a stored conversation's model is checked against it). */
  router: ModelRouter;
  /** The serving pipeline (limits, billing, engines), the same as /v1/chat/completions'. */
  serving: Serving;
  /** How often a streaming answer's text is written to the store (ms); default 500. */
  flushIntervalMs?: number;
  /** When a stream with no write counts as dead (ms); see src/chat/config.ts. */
  staleStreamMs?: number;
  /** How long running replies may finish at shutdown before they end as interrupted (ms). */
  drainMs?: number;
  /** Answers one account may have running at once, watched or not (0 = no cap); see ConversationReplies. */
  maxRunningPerUser?: number | (() => number | Promise<number>);
  /** The plan of an account with none (billing.defaultPlan): its thinking cap bounds the settings. */
  defaultPlanId?: string;
}

export function registerConversations(app: FastifyInstance, deps: ConversationRoutesDeps): ConversationReplies {
  const db = deps.store.db;
  const replies = new ConversationReplies({
    db,
    serving: deps.serving,
    dialect: deps.store.dialect,
    flushIntervalMs: deps.flushIntervalMs,
    staleStreamMs: deps.staleStreamMs,
    ...(deps.maxRunningPerUser !== undefined ? { maxRunningPerUser: deps.maxRunningPerUser } : {}),
    logger: app.log,
  });
  app.addHook("onReady", async () => {
    await replies.recover();
  });
  // Running replies finish (or end as interrupted after the drain time) before the store closes.
  app.addHook("preClose", async () => {
    await replies.close(deps.drainMs ?? 0);
  });

  async function ownConversation(request: FastifyRequest<{ Params: { id: string } }>, action: "read" | "update" | "delete" | "reply") {
    const id = idSchema.safeParse(request.params.id);
    const conversation = id.success ? await findConversation(db, id.data) : undefined;
    authorize(request.actor, `conversation.${action}`, conversation);
    return conversation;
  }

  registerConversationFeatures(app, { store: deps.store, ...(deps.defaultPlanId !== undefined ? { defaultPlanId: deps.defaultPlanId } : {}) });

  app.get("/api/conversations", async (request) => {
    const userId = accountOf(request, "conversation.list");
    const query = listQuery.parse(request.query);
    if (query.q?.trim()) {
      const results = await searchConversations(db, deps.store.dialect, { userId, query: query.q, limit: query.limit });
      return { data: results.map(presentSearchResult), next_cursor: null };
    }
    try {
      const page = await listConversations(db, { userId, search: query.q, limit: query.limit, cursor: query.cursor });
      return { data: page.items.map(presentConversation), next_cursor: page.nextCursor };
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new ApiError(400, error.message, "invalid_parameter", "cursor");
      throw error;
    }
  });

  app.post("/api/conversations", async (request, reply) => {
    const userId = accountOf(request, "conversation.create");
    const body = createBody.parse(request.body);
    const model = body?.model ?? null;
    // Only a model that is served and visible to the caller is remembered (any other is a 404, as on /v1).
    if (model !== null) authorize(request.actor, "model.read", deps.router.model(model) ? { id: model, plan: null } : null);
    const conversation = await createConversation(db, { userId, model });
    return reply.status(201).send(presentConversation(conversation));
  });

  app.get<{ Params: { id: string } }>("/api/conversations/:id", async (request) => {
    const conversation = await ownConversation(request, "read");
    const messages = await listMessages(db, conversation.id);
    return { conversation: presentConversation(conversation), messages: messages.map(presentMessage) };
  });

  app.patch<{ Params: { id: string } }>("/api/conversations/:id", async (request) => {
    const conversation = await ownConversation(request, "update");
    const body = patchBody.parse(request.body);
    if (body.current_message_id !== undefined) {
      const messages = await listMessages(db, conversation.id);
      if (!messages.some((m) => m.id === body.current_message_id)) {
        throw new ApiError(404, "Message not found", "not_found", "current_message_id");
      }
    }
    let settings: string | null | undefined;
    if (body.settings !== undefined) {
      const plan = await resolvePlan(db, requireUser(request.actor).planId, deps.defaultPlanId ?? FREE_PLAN_ID);
      settings = applySettingsPatch(parseSettings(conversation.settings), body.settings, { maxThinkingBudget: plan.maxThinkingBudget }).stored;
    }
    if (body.pinned === true && conversation.pinned_at === null) {
      const pinned = await db.selectFrom("conversations").select((eb) => eb.fn.countAll<number>().as("n")).where("user_id", "=", conversation.user_id).where("pinned_at", "is not", null).executeTakeFirstOrThrow();
      if (Number(pinned.n) >= MAX_PINNED) throw new ApiError(409, `You can pin at most ${MAX_PINNED} conversations; unpin one first.`, "too_many_pinned", "pinned");
    }
    const patch = {
      ...(body.title !== undefined ? { title: body.title } : {}),
      ...(body.current_message_id !== undefined ? { current_message_id: body.current_message_id } : {}),
      ...(settings !== undefined ? { settings } : {}),
      // Pinning again keeps the first pin's time (and place).
      ...(body.pinned !== undefined ? { pinned_at: body.pinned ? (conversation.pinned_at ?? Date.now()) : null } : {}),
    };
    await updateConversation(db, conversation.id, patch);
    return presentConversation({ ...conversation, ...patch });
  });

  app.delete<{ Params: { id: string } }>("/api/conversations/:id", async (request, reply) => {
    const conversation = await ownConversation(request, "delete");
    await deleteConversation(db, conversation.id);
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string; messageId: string } }>("/api/conversations/:id/messages/:messageId/stop", async (request) => {
    const conversation = await ownConversation(request, "update");
    const messages = await listMessages(db, conversation.id);
    const target = messages.find((m) => m.id === request.params.messageId);
    if (!target) throw new ApiError(404, "Message not found", "not_found", "messageId");
    const stopped = await replies.stop(target.id);
    return presentMessage(stopped ?? target);
  });

  app.get<{ Params: { id: string; messageId: string } }>("/api/conversations/:id/messages/:messageId/stream", async (request, reply) => {
    const conversation = await ownConversation(request, "read");
    const { after } = attachQuery.parse(request.query);
    const messageId = idSchema.safeParse(request.params.messageId);
    const running = messageId.success ? replies.running(messageId.data) : undefined;
    if (running && running.conversationId === conversation.id) {
      reply.hijack();
      await watch(reply.raw, running.channel, after);
      return;
    }
    // Not being written by this process: what is stored is the answer (or another replica's).
    const stored = messageId.success ? await findMessage(db, messageId.data) : undefined;
    if (!stored || stored.conversation_id !== conversation.id) throw new ApiError(404, "Message not found", "not_found", "messageId");
    reply.hijack();
    const sse = new SseWriter(reply.raw);
    sse.open();
    sse.data(presentReplyEvent({ type: "snapshot", message: stored, queue: null, reasoning_ms: stored.reasoning_ms, reasoning_done: stored.status !== "streaming" }));
    sse.end();
  });

  app.post<{ Params: { id: string } }>("/api/conversations/:id/messages", async (request, reply) => {
    const conversation = await ownConversation(request, "reply");
    const body = replyBody.parse(request.body);
    const messages = await listMessages(db, conversation.id);
    const input = replyInput(body, messages);

    let started: Reply;
    try {
      // Refusals (rate limit, full queue, balance, quota, model access, too many answers running)
      // answer with their status and Retry-After, before any byte and before anything is stored.
      // No client signal: the answer runs until it ends, Stop, or shutdown, watched or not.
      started = await replies.start({
        conversation,
        messages,
        input,
        generation: replyGeneration(messages, input, { model: body.model, thinking: body.thinking, settings: parseSettings(conversation.settings) }),
        actor: request.actor,
        identity: identityOf(request.actor, request.ip),
        clientIp: request.ip ?? null,
        ...(body.search || body.file_ids.length > 0 ? { retrieval: { web: body.search, fileIds: body.file_ids } } : {}),
      });
    } catch (error) {
      throw toApiError(error);
    }

    // From here on the reply is an event stream; the answer runs on its own.
    try {
      reply.hijack();
    } catch (error) {
      await started.abandon();
      throw error;
    }
    void replies.launch(started);
    await watch(reply.raw, started.channel, 0, started.headers);
  });

  return replies;
}

/**
 * Streams a running reply's channel to one client until the reply ends or the client goes away
 * (which ends only the watching). `after`: resume after that event id (0: from the first event).
 */
function watch(res: ServerResponse, channel: ReplyChannel<ReplyEvent>, after: number | undefined, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve) => {
    const sse = new SseWriter(res);
    sse.open(headers);
    const keepalive = setInterval(() => sse.comment("keep-alive"), KEEPALIVE_MS);
    let finished = false;
    let unsubscribe = (): void => undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(keepalive);
      unsubscribe();
      sse.end();
      resolve();
    };
    res.on("close", finish);
    unsubscribe = channel.subscribe(
      {
        event: (entry) => {
          sse.data(presentReplyEvent(entry.event), entry.seq);
          if (sse.unsent > MAX_UNSENT_BYTES) finish();
        },
        end: finish,
      },
      after,
    );
    if (finished) unsubscribe();
  });
}

/** The signed-in account behind a class action; the conversation policy admits only accounts. */
function accountOf(request: FastifyRequest, action: "conversation.list" | "conversation.create"): string {
  authorize(request.actor, action);
  return requireUser(request.actor).userId;
}

function replyInput(body: z.infer<typeof replyBody>, messages: Message[]): ReplyInput {
  if (body.regenerate !== undefined) {
    const target = messages.find((m) => m.id === body.regenerate);
    if (!target || target.role !== "assistant") throw new ApiError(404, "Message not found", "not_found", "regenerate");
    if (target.status === "streaming") throw new ApiError(409, "This answer is still being written.", "conflict", "regenerate");
    return { kind: "regenerate", target };
  }
  const content = body.content ?? "";
  if (content.trim() === "") throw new ApiError(400, "Invalid value for 'content': the message is empty", "invalid_parameter", "content");
  const parentId = body.parent_id ?? null;
  if (parentId !== null) {
    const parent = messages.find((m) => m.id === parentId);
    if (!parent) throw new ApiError(404, "Message not found", "not_found", "parent_id");
    if (parent.role !== "assistant") {
      throw new ApiError(400, "Invalid value for 'parent_id': a message follows an answer", "invalid_parameter", "parent_id");
    }
  }
  return { kind: "send", content, parentId };
}

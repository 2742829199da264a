import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { FREE_PLAN_ID, resolvePlan } from "../../billing/plans.ts";
import { MAX_ANSWER_TOKENS, MAX_SYSTEM_PROMPT_CHARS, parseSettings } from "../../chat/conversationSettings.ts";
import { findConversation, listMessages, type Conversation } from "../../chat/conversations.ts";
import { defaultLeaf, pathTo } from "../../chat/messageTree.ts";
import { findLiveShareByToken, findShare, listLiveShares, shareAuthor, sharedMessages } from "../../chat/shares.ts";
import { revokeShare, shareConversation } from "../../commands/conversationShares.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { exportFileName, exportJson, exportMarkdown } from "../../presenters/conversationExport.ts";
import { presentShare, presentSharedConversation } from "../../presenters/conversationShare.ts";
import type { ConversationSettingsResponse } from "../../presenters/conversationTypes.ts";
import type { Store } from "../../store/database.ts";
import { ApiError } from "../errors.ts";

/**
 * The chat's conversation features beside the conversations API (src/http/app/conversations.ts):
 *
 *   GET    /api/conversations/:id/settings          → {settings, limits} for the settings panel
 *          (settings are changed with PATCH /api/conversations/:id {settings: {…}})
 *   GET    /api/conversations/:id/export?format=json|md&reasoning=true|false
 *                                                    → a download of the current branch
 *   GET    /api/conversations/:id/shares            → the live read-only links
 *   POST   /api/conversations/:id/shares {include_reasoning?, show_author?}
 *                                                    → 201, the link's path shown this once
 *   DELETE /api/conversations/:id/shares/:shareId   → 204; the link answers 404 from now on
 *   GET    /api/shared/:token                       PUBLIC: the shared snapshot (no ids, no account)
 *
 * The public route is under the per-IP flood guard like every route (middleware/floodGuard); a
 * token is 256 random bits, looked up by its hash, and any miss is the same 404.
 */

const idSchema = z.string().min(1).max(64);
const exportQuery = z.object({
  format: z.enum(["json", "md"], { message: "format must be json or md" }),
  reasoning: z.enum(["true", "false", "1", "0"]).optional(),
});
const shareBody = z
  .object({ include_reasoning: z.boolean().default(false), show_author: z.boolean().default(false) })
  .strict()
  .nullable()
  .optional();

export interface ConversationFeatureDeps {
  store: Store;
  /** The plan of an account with none (billing.defaultPlan): its thinking cap bounds the settings. */
  defaultPlanId?: string;
}

export function registerConversationFeatures(app: FastifyInstance, deps: ConversationFeatureDeps): void {
  const db = deps.store.db;

  async function ownConversation(request: FastifyRequest, action: "read" | "share"): Promise<Conversation> {
    const id = idSchema.safeParse((request.params as { id?: unknown }).id);
    const conversation = id.success ? await findConversation(db, id.data) : undefined;
    authorize(request.actor, `conversation.${action}`, conversation);
    return conversation;
  }

  app.get("/api/conversations/:id/settings", async (request): Promise<ConversationSettingsResponse> => {
    const conversation = await ownConversation(request, "read");
    const actor = requireUser(request.actor);
    const plan = await resolvePlan(db, actor.planId, deps.defaultPlanId ?? FREE_PLAN_ID);
    return {
      settings: parseSettings(conversation.settings),
      limits: { max_system_prompt_chars: MAX_SYSTEM_PROMPT_CHARS, max_tokens: MAX_ANSWER_TOKENS, max_thinking_budget: plan.maxThinkingBudget },
    };
  });

  app.get("/api/conversations/:id/export", async (request, reply) => {
    const conversation = await ownConversation(request, "read");
    const query = exportQuery.parse(request.query);
    const includeReasoning = query.reasoning === "true" || query.reasoning === "1";
    const messages = await listMessages(db, conversation.id);
    const leaf = conversation.current_message_id && messages.some((m) => m.id === conversation.current_message_id) ? conversation.current_message_id : (defaultLeaf(messages)?.id ?? null);
    const branch = pathTo(messages, leaf);
    const name = exportFileName(conversation, query.format);
    reply
      .header("cache-control", "no-store")
      .header("content-disposition", `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, "_")}"; filename*=UTF-8''${encodeURIComponent(name)}`);
    if (query.format === "json") {
      return reply.type("application/json; charset=utf-8").send(JSON.stringify(exportJson(conversation, branch, { includeReasoning }), null, 2));
    }
    return reply.type("text/markdown; charset=utf-8").send(exportMarkdown(conversation, branch, { includeReasoning }));
  });

  app.get("/api/conversations/:id/shares", async (request) => {
    const conversation = await ownConversation(request, "share");
    const shares = await listLiveShares(db, conversation.id);
    return { data: shares.map((s) => presentShare(s)) };
  });

  app.post("/api/conversations/:id/shares", async (request, reply) => {
    const conversation = await ownConversation(request, "share");
    const actor = requireUser(request.actor);
    const body = shareBody.parse(request.body) ?? { include_reasoning: false, show_author: false };
    const { token, share } = await shareConversation(
      db,
      { userId: actor.userId, ip: request.ip ?? null },
      conversation,
      { includeReasoning: body.include_reasoning, showAuthor: body.show_author },
    );
    return reply.status(201).send(presentShare(share, token));
  });

  app.delete<{ Params: { id: string; shareId: string } }>("/api/conversations/:id/shares/:shareId", async (request, reply) => {
    const conversation = await ownConversation(request, "share");
    const shareId = idSchema.safeParse(request.params.shareId);
    const share = shareId.success ? await findShare(db, shareId.data) : undefined;
    // A link of another conversation (or a revoked one) is not found here.
    const live = share && share.conversation_id === conversation.id && share.revoked_at === null ? share : undefined;
    authorize(request.actor, "conversationShare.revoke", live);
    await revokeShare(db, { userId: requireUser(request.actor).userId, ip: request.ip ?? null }, live);
    return reply.status(204).send();
  });

  app.get<{ Params: { token: string } }>("/api/shared/:token", { config: { access: "public" } }, async (request, reply) => {
    const share = await findLiveShareByToken(db, request.params.token);
    if (!share) throw new ApiError(404, "This link does not exist or was revoked.", "not_found");
    const [messages, author] = await Promise.all([sharedMessages(db, share), shareAuthor(db, share)]);
    // Never kept by a browser or a proxy: a revoked link must stop showing at once.
    reply.header("cache-control", "no-store").header("x-robots-tag", "noindex");
    return presentSharedConversation(share, messages, author);
  });
}

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Kysely } from "kysely";
import type { Moderation } from "../../moderation/moderation.ts";
import { listInterventions } from "../../moderation/store.ts";
import { authorize } from "../../policies/index.ts";
import { presentModerationEvent, presentPolicy } from "../../presenters/moderation.ts";
import type { Database } from "../../store/schema.ts";
import { paged, pageQuery } from "./params.ts";

const moderationQuery = z.object({ policy: z.string().min(1).max(64).optional(), ...pageQuery });

/**
 * GET /api/admin/moderation: the active policies and every intervention, newest first (paged, by
 * policy on request) — refused questions, flagged and withheld answers, from every surface.
 */
export function registerModerationAdmin(app: FastifyInstance, deps: { db: Kysely<Database>; moderation: Moderation }): void {
  app.get("/api/admin/moderation", async (request, reply) => {
    authorize(request.actor, "moderation.list");
    const query = moderationQuery.parse(request.query);
    const page = await paged(() => listInterventions(deps.db, { limit: query.limit, cursor: query.cursor, policy: query.policy }));
    reply.header("cache-control", "no-store");
    return {
      policies: deps.moderation.policies.map(presentPolicy),
      data: page.items.map(presentModerationEvent),
      next_cursor: page.nextCursor,
    };
  });
}

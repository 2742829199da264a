import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Kysely } from "kysely";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentSearch } from "../../presenters/searches.ts";
import { deleteSearch, getSearch, listSearches } from "../../search/history.ts";
import type { Database } from "../../store/schema.ts";

const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) });
const idSchema = z.string().min(1).max(64);

/**
 * The signed-in user's search history (src/search/history.ts; src/policies/searches.ts decides):
 *
 *   GET    /api/searches?limit=    newest first
 *   DELETE /api/searches/:id       → 204; another user's search is 404
 */
export function registerSearchHistory(app: FastifyInstance, deps: { db: Kysely<Database> }): void {
  app.get("/api/searches", async (request) => {
    authorize(request.actor, "search.list");
    const { limit } = listQuery.parse(request.query);
    return { data: (await listSearches(deps.db, requireUser(request.actor).userId, { limit })).map(presentSearch) };
  });

  app.delete<{ Params: { id: string } }>("/api/searches/:id", async (request, reply) => {
    const id = idSchema.safeParse(request.params.id);
    const search = id.success ? await getSearch(deps.db, id.data) : undefined;
    authorize(request.actor, "search.delete", search);
    await deleteSearch(deps.db, search.id);
    return reply.status(204).send();
  });
}

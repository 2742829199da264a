import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { countLiveApiKeys, createApiKey, findApiKey, listApiKeys, MAX_LIVE_KEYS_PER_USER, renameApiKey, revokeApiKey } from "../../auth/apiKeys.ts";
import type { AuthServices } from "../middleware/auth/index.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentApiKey, presentCreatedApiKey } from "../../presenters/apiKey.ts";
import { ApiError } from "../errors.ts";
import { expiryOf, futureTime, idParam } from "./params.ts";

const keyName = z.string().trim().min(1).max(100);

const createBody = z.object({
  name: keyName,
  /** Model ids the key may use; omitted or null for every model. */
  models: z.array(z.string().min(1).max(128)).min(1).max(100).nullish(),
  expires_at: futureTime.nullish(),
  expires_in_days: z.number().int().min(1).max(3650).nullish(),
});

const updateBody = z.object({ name: keyName });

/** /api/keys: a user's own API keys for /v1. */
export function registerKeyRoutes(app: FastifyInstance, auth: AuthServices): void {
  const db = auth.store.db;

  app.get("/api/keys", async (request) => {
    authorize(request.actor, "apiKey.list");
    const actor = requireUser(request.actor);
    const keys = await listApiKeys(db, actor.userId);
    return { data: keys.map((k) => presentApiKey(k)) };
  });

  app.post("/api/keys", async (request, reply) => {
    authorize(request.actor, "apiKey.create");
    const actor = requireUser(request.actor);
    const body = createBody.parse(request.body);
    if ((await countLiveApiKeys(db, actor.userId)) >= MAX_LIVE_KEYS_PER_USER) {
      throw new ApiError(409, `You already have ${MAX_LIVE_KEYS_PER_USER} keys; revoke one first.`, "too_many_keys");
    }
    const models = body.models ? [...new Set(body.models)] : null;
    const { key, row } = await createApiKey(db, { userId: actor.userId, name: body.name, models, expiresAt: expiryOf(body) });
    return reply.status(201).send(presentCreatedApiKey(row, key));
  });

  app.get("/api/keys/:id", async (request) => {
    const id = idParam(request);
    const key = id ? await findApiKey(db, id) : undefined;
    authorize(request.actor, "apiKey.read", key);
    return presentApiKey(key);
  });

  app.patch("/api/keys/:id", async (request) => {
    const id = idParam(request);
    const key = id ? await findApiKey(db, id) : undefined;
    authorize(request.actor, "apiKey.update", key);
    const body = updateBody.parse(request.body);
    await renameApiKey(db, key.id, body.name);
    return presentApiKey({ ...key, name: body.name });
  });

  app.delete("/api/keys/:id", async (request, reply) => {
    const id = idParam(request);
    const key = id ? await findApiKey(db, id) : undefined;
    authorize(request.actor, "apiKey.delete", key);
    await revokeApiKey(db, key.id);
    return reply.status(204).send();
  });
}

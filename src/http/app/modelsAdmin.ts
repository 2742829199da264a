import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { cancelModelPull, deleteModelFile, loadModel, startModelPull, unloadModel } from "../../commands/localModels.ts";
import type { AdminContext } from "../../commands/manageUsers.ts";
import { ServiceError } from "../../errors.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentLoadedModel, presentModelsOverview, presentPullJob } from "../../presenters/localModels.ts";
import type { ModelManagement } from "../../models/management.ts";
import type { Store } from "../../store/database.ts";
import { idParam } from "./params.ts";

const pullBody = z
  .object({
    /** What `sputnik pull` takes: hf:user/repo:QUANT, hf:user/repo/file.gguf or an https:// URL. */
    source: z.string().trim().min(1).max(2000),
    /** Store under this name instead of the file's. */
    name: z.string().trim().min(1).max(205).nullish(),
  })
  .strict();
const nameParams = z.object({ name: z.string().min(1).max(205) });
const idParams = z.object({ id: z.string().min(1).max(205) });

function pullNotFound(): ServiceError {
  return new ServiceError("not_found", "Pull not found (pulls are kept until the service restarts).", { code: "pull_not_found" });
}

/**
 * /api/admin/models/*: the local models, managed from the app (Admin → Models) without a restart.
 * Admins only (policy localModels.manage); the work is src/runtime/modelManager.ts, the audit rows
 * src/commands/localModels.ts.
 *
 *   GET    /api/admin/models                         loaded models, files (size, loaded or not), pulls, memory
 *   POST   /api/admin/models/pulls                   {source, name?} → 202, the pull (runs in the background)
 *   GET    /api/admin/models/pulls/:id               its progress: bytes, speed, ETA, state (the page polls it)
 *   POST   /api/admin/models/pulls/:id/cancel        stops it; the partial file stays, so pulling again resumes
 *   POST   /api/admin/models/files/:name/load        loads a file (memory check first) → served at once
 *   POST   /api/admin/models/loaded/:id/unload       stops serving a model (409 while it answers)
 *   DELETE /api/admin/models/files/:name             deletes a file (409 while loaded or pulled)
 */
export function registerModelsAdminRoutes(app: FastifyInstance, deps: { store: Store; manager: ModelManagement }): void {
  const db = deps.store.db;
  const { manager } = deps;
  const adminOf = (request: FastifyRequest): AdminContext => {
    authorize(request.actor, "localModels.manage");
    return { userId: requireUser(request.actor).userId, ip: request.ip };
  };

  app.get("/api/admin/models", async (request, reply) => {
    authorize(request.actor, "localModels.manage");
    reply.header("cache-control", "no-store");
    return presentModelsOverview({
      localEngine: manager.hasLocalEngine,
      files: await manager.files(),
      loaded: manager.loaded(),
      pulls: manager.pulls.list(),
      memory: manager.memory(),
    });
  });

  app.post("/api/admin/models/pulls", async (request, reply) => {
    const by = adminOf(request);
    const body = pullBody.parse(request.body);
    const job = await startModelPull(db, by, manager, body);
    return reply.status(202).send(presentPullJob(job));
  });

  app.get("/api/admin/models/pulls/:id", async (request, reply) => {
    authorize(request.actor, "localModels.manage");
    const id = idParam(request);
    const job = id ? manager.pulls.get(id) : undefined;
    if (!job) throw pullNotFound();
    reply.header("cache-control", "no-store");
    return presentPullJob(job);
  });

  app.post("/api/admin/models/pulls/:id/cancel", async (request) => {
    const by = adminOf(request);
    const id = idParam(request);
    const job = id ? await cancelModelPull(db, by, manager, id) : undefined;
    if (!job) throw pullNotFound();
    return presentPullJob(job);
  });

  app.post("/api/admin/models/files/:name/load", async (request) => {
    const by = adminOf(request);
    const { name } = nameParams.parse(request.params);
    return presentLoadedModel(await loadModel(db, by, manager, name));
  });

  app.post("/api/admin/models/loaded/:id/unload", async (request, reply) => {
    const by = adminOf(request);
    const { id } = idParams.parse(request.params);
    await unloadModel(db, by, manager, id);
    return reply.status(204).send();
  });

  app.delete("/api/admin/models/files/:name", async (request, reply) => {
    const by = adminOf(request);
    const { name } = nameParams.parse(request.params);
    await deleteModelFile(db, by, manager, name);
    return reply.status(204).send();
  });
}

import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import type { PullJob } from "../models/pullJobs.ts";
import type { LoadedModel, ModelManagement } from "../models/management.ts";
import type { Database } from "../store/schema.ts";
import type { AdminContext } from "./manageUsers.ts";

/**
 * What admins do to local models (Admin → Models), each with its audit row. The change itself is
 * not in the database (a file, the engine's memory), so there is no transaction to share: the row
 * is written once the change is made, and a refused change leaves none.
 */

export async function startModelPull(db: Kysely<Database>, by: AdminContext, manager: ModelManagement, input: { source: string; name?: string | null }): Promise<PullJob> {
  const job = manager.pulls.start({ source: input.source, name: input.name ?? null, startedBy: by.userId });
  await writeAudit(db, { actorUserId: by.userId, action: "model.pull", targetType: "model", targetId: job.name, details: { source: job.source, pull_id: job.id }, ip: by.ip });
  return job;
}

/** Undefined for an unknown pull; a finished one is returned as it is (nothing to cancel, no row). */
export async function cancelModelPull(db: Kysely<Database>, by: AdminContext, manager: ModelManagement, pullId: string): Promise<PullJob | undefined> {
  const before = manager.pulls.get(pullId);
  const job = await manager.pulls.cancel(pullId);
  if (job && before && (before.state === "downloading" || before.state === "verifying")) {
    await writeAudit(db, { actorUserId: by.userId, action: "model.pull_cancel", targetType: "model", targetId: job.name, details: { source: job.source, pull_id: job.id, state: job.state }, ip: by.ip });
  }
  return job;
}

export async function loadModel(db: Kysely<Database>, by: AdminContext, manager: ModelManagement, name: string): Promise<LoadedModel> {
  const model = await manager.load(name);
  await writeAudit(db, { actorUserId: by.userId, action: "model.load", targetType: "model", targetId: model.id, details: { memory_bytes: model.memoryBytes, parallel: model.parallel }, ip: by.ip });
  return model;
}

export async function unloadModel(db: Kysely<Database>, by: AdminContext, manager: ModelManagement, id: string): Promise<void> {
  await manager.unload(id);
  await writeAudit(db, { actorUserId: by.userId, action: "model.unload", targetType: "model", targetId: id, ip: by.ip });
}

export async function deleteModelFile(db: Kysely<Database>, by: AdminContext, manager: ModelManagement, name: string): Promise<void> {
  await manager.deleteFile(name);
  await writeAudit(db, { actorUserId: by.userId, action: "model.delete", targetType: "model", targetId: name, ip: by.ip });
}

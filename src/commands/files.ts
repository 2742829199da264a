/**
 * Uploaded documents (issue 15): what `/v1/files` and `/api/files` do, transport-neutral. An upload
 * is refused as early as it can be — the plan's `documents` feature, the size the client declares,
 * a quota already used up — before its body is read; the bytes are then read up to
 * `documents.maxFileBytes` and no further (src/http/fileUpload.ts), sniffed (the name and the
 * declared type are only claims), stored with the row in one transaction, and indexed in the
 * background (src/search/files/indexer.ts) while the caller gets the file at once, `processing`.
 */
import type { Kysely } from "kysely";
import type { Actor } from "../auth/actor.ts";
import { requireFeature } from "../billing/features.ts";
import { resolvePlan, type Plan } from "../billing/plans.ts";
import { BillingRefusal } from "../billing/refusals.ts";
import { ServiceError } from "../errors.ts";
import { authorize, type SignedInActor } from "../policies/index.ts";
import { fileOwnerId } from "../policies/files.ts";
import { sniffDocument } from "../search/documents/sniff.ts";
import type { DocumentsConfig } from "../search/files/config.ts";
import type { FileIndexer } from "../search/files/indexer.ts";
import { createFile, deleteFile, getFile, listFiles, readBlob, storedBytes, type StoredFile } from "../search/store/files.ts";
import type { Database } from "../store/schema.ts";

export interface FilesDeps {
  db: Kysely<Database>;
  config: Pick<DocumentsConfig, "maxFileBytes" | "maxStoredBytesPerUser" | "maxFilesPerUser">;
  /** `billing.defaultPlan`: the plan of users who have none of their own. */
  defaultPlanId: string;
  indexer: Pick<FileIndexer, "enqueue">;
}

/** OpenAI's file purposes; the purpose is a label here (every document is indexed alike). */
export const FILE_PURPOSES = ["assistants", "user_data", "batch", "fine-tune", "vision", "evals"] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];
/** What the web app's uploads are filed under. */
export const APP_FILE_PURPOSE: FilePurpose = "assistants";

/**
 * Room for the multipart framing around the file (boundaries, part headers, the `purpose` field):
 * a declared body longer than the file limit plus this cannot hold an acceptable file.
 */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** What `beginUpload` found out, handed to `uploadFile` once the bytes are in. */
export interface UploadGrant {
  actor: SignedInActor;
  ownerId: string;
  /** Bytes this owner may store in all; null: not limited (the local operator). */
  storedBytesLimit: number | null;
  maxFileBytes: number;
}

/**
 * Everything that can refuse an upload before its body is read: who asks (401), the plan's
 * `documents` feature (403 feature_not_allowed), a declared size that cannot fit (413), a storage
 * quota or file count already used up (429).
 */
export async function beginUpload(deps: FilesDeps, actor: Actor, declaredBodyBytes: number | null): Promise<UploadGrant> {
  authorize(actor, "file.create");
  const ownerId = fileOwnerId(actor)!;
  if (declaredBodyBytes !== null && declaredBodyBytes > deps.config.maxFileBytes + MULTIPART_OVERHEAD_BYTES) throw tooLarge(deps.config.maxFileBytes);
  // The local operator (no account, no plan) is limited by the file size alone: it is their disk.
  let storedBytesLimit: number | null = null;
  if (actor.kind === "user") {
    const plan = await resolvePlan(deps.db, actor.planId, deps.defaultPlanId);
    requireFeature(plan, "documents");
    storedBytesLimit = storedBytesLimitOf(plan, deps.config.maxStoredBytesPerUser);
    const used = await storedBytes(deps.db, ownerId);
    if (used >= storedBytesLimit) throw storageQuotaExceeded(storedBytesLimit, used, 0);
    if (deps.config.maxFilesPerUser !== null && (await countFiles(deps.db, ownerId)) >= deps.config.maxFilesPerUser) {
      throw new BillingRefusal(429, `You already keep ${deps.config.maxFilesPerUser} files, the most allowed: delete some you no longer need, then upload again.`, "quota_exceeded", "file", {
        "x-quota-limit-files": String(deps.config.maxFilesPerUser),
      });
    }
  }
  return { actor, ownerId, storedBytesLimit, maxFileBytes: deps.config.maxFileBytes };
}

export interface UploadInput {
  /** As the client named it: a label only (cleaned by the store), never a path. */
  filename: string;
  purpose: string;
  bytes: Uint8Array;
}

/**
 * Stores the file and queues it for indexing; returns it `processing`. The content decides the
 * type (415 for what is not text, Markdown, HTML, PDF or DOCX). Two uploads racing for the last
 * of a quota cannot both get in: the row is written first and the total checked after, and an
 * upload that took it over the limit is removed again.
 */
export async function uploadFile(deps: FilesDeps, grant: UploadGrant, input: UploadInput): Promise<StoredFile> {
  const purpose = parsePurpose(input.purpose);
  if (input.bytes.byteLength > grant.maxFileBytes) throw tooLarge(grant.maxFileBytes);
  const sniffed = await sniffDocument(input.bytes);
  const file = await createFile(deps.db, { userId: grant.ownerId, filename: input.filename, mime: sniffed.mime, purpose, content: input.bytes });
  if (grant.storedBytesLimit !== null) {
    const used = await storedBytes(deps.db, grant.ownerId);
    if (used > grant.storedBytesLimit) {
      await deleteFile(deps.db, file.id);
      throw storageQuotaExceeded(grant.storedBytesLimit, used - file.bytes, file.bytes);
    }
  }
  deps.indexer.enqueue(file.id);
  return file;
}

/** The actor's own files, newest first (no plan check: a user whose plan lost `documents` can still see and delete theirs). */
export async function filesOf(deps: Pick<FilesDeps, "db">, actor: Actor, opts: { purpose?: string } = {}): Promise<StoredFile[]> {
  authorize(actor, "file.list");
  return listFiles(deps.db, fileOwnerId(actor)!, opts.purpose !== undefined ? { purpose: opts.purpose } : {});
}

/** One file the actor may read; 404 for a missing id and for anyone else's file alike. */
export async function fileFor(deps: Pick<FilesDeps, "db">, actor: Actor, id: string | null): Promise<StoredFile> {
  const file = id === null ? undefined : await getFile(deps.db, id);
  authorize(actor, "file.read", file);
  return file;
}

/** The file and its bytes, for a download. */
export async function fileContent(deps: Pick<FilesDeps, "db">, actor: Actor, id: string | null): Promise<{ file: StoredFile; bytes: Uint8Array }> {
  const file = await fileFor(deps, actor, id);
  const bytes = await readBlob(deps.db, file.id);
  // Deleted between the two reads: as missing as any other.
  if (!bytes) throw new ServiceError("not_found", "File not found", { code: "not_found" });
  return { file, bytes };
}

/** Deletes the file, its bytes and its chunks (search stops finding it at once); an indexing job in flight notices and stops. */
export async function removeFile(deps: Pick<FilesDeps, "db">, actor: Actor, id: string | null): Promise<string> {
  const file = id === null ? undefined : await getFile(deps.db, id);
  authorize(actor, "file.delete", file);
  await deleteFile(deps.db, file.id);
  return file.id;
}

/** The plan's own storage quota, else the server's default. */
export function storedBytesLimitOf(plan: Pick<Plan, "storedBytesQuota">, serverDefault: number): number {
  return plan.storedBytesQuota ?? serverDefault;
}

function parsePurpose(purpose: string): FilePurpose {
  if ((FILE_PURPOSES as readonly string[]).includes(purpose)) return purpose as FilePurpose;
  throw new ServiceError("invalid_request", `Invalid value for 'purpose': expected one of ${FILE_PURPOSES.join(", ")}.`, { code: "invalid_parameter", param: "purpose" });
}

async function countFiles(db: Kysely<Database>, ownerId: string): Promise<number> {
  const row = await db
    .selectFrom("files")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("user_id", "=", ownerId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export function tooLarge(maxFileBytes: number): ServiceError {
  return new ServiceError("too_large", `The file is too large: at most ${formatBytes(maxFileBytes)} per file.`, { code: "file_too_large", param: "file" });
}

/**
 * 429: stored bytes do not come back with time, so there is no Retry-After; the message says what
 * frees room instead.
 */
function storageQuotaExceeded(limit: number, used: number, adding: number): BillingRefusal {
  const what = adding > 0 ? `This file (${formatBytes(adding)}) would take your stored documents over` : "Your stored documents already use";
  return new BillingRefusal(
    429,
    `${what} your storage quota of ${formatBytes(limit)} (${formatBytes(used)} used). Delete files you no longer need (GET /v1/files lists them; DELETE /v1/files/{id}, or the web app's file list) and upload again.`,
    "quota_exceeded",
    "file",
    { "x-quota-limit-bytes": String(limit), "x-quota-used-bytes": String(used) },
  );
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

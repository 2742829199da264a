import assert from "node:assert/strict";
import type { UserActor } from "../auth/actor.ts";
import { LOCAL } from "../auth/actor.ts";
import { savePlan, type Plan } from "../billing/plans.ts";
import { ServiceError } from "../errors.ts";
import { getFile } from "../search/store/files.ts";
import { forEachDatabase } from "../../test/support/databases.ts";
import { beginUpload, fileContent, fileFor, filesOf, removeFile, uploadFile, type FilesDeps } from "./files.ts";

const PLAN: Plan = { id: "docs", name: "Docs", billed: false, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: ["documents"] };

const user = (userId: string, planId: string | null): UserActor => ({ kind: "user", userId, role: "user", apiKeyId: null, sessionId: null, planId });
const text = (chars: number) => new TextEncoder().encode("Plain notes. ".repeat(Math.ceil(chars / 13)).slice(0, chars));

function deps(db: FilesDeps["db"], queued: string[] = []): FilesDeps {
  return {
    db,
    config: { maxFileBytes: 10_000, maxStoredBytesPerUser: 1_000_000, maxFilesPerUser: 5 },
    defaultPlanId: "free",
    indexer: { enqueue: (id) => void queued.push(id) },
  };
}

async function upload(d: FilesDeps, actor: Parameters<typeof beginUpload>[1], bytes: Uint8Array, filename = "notes.txt") {
  return uploadFile(d, await beginUpload(d, actor, null), { filename, purpose: "assistants", bytes });
}

function refusal(kind: string, code: string | null) {
  return (error: unknown) => error instanceof ServiceError && error.kind === kind && error.code === code;
}

forEachDatabase("files: the owner reads and deletes; anyone else gets 404", async (store) => {
  await savePlan(store.db, PLAN);
  const queued: string[] = [];
  const d = deps(store.db, queued);
  const alice = user("alice", "docs");
  const bob = user("bob", "docs");
  const file = await upload(d, alice, text(500), "../../x");
  assert.deepEqual(queued, [file.id], "queued for indexing");
  assert.equal(file.status, "processing");
  assert.equal(file.mime, "text/plain");
  assert.equal(file.filename, "../../x", "kept as a label, never a path");
  assert.equal((await fileFor(d, alice, file.id)).id, file.id);
  assert.equal(Buffer.from((await fileContent(d, alice, file.id)).bytes).toString(), Buffer.from(text(500)).toString());
  for (const attempt of [() => fileFor(d, bob, file.id), () => fileContent(d, bob, file.id), () => removeFile(d, bob, file.id), () => fileFor(d, LOCAL, file.id)]) {
    await assert.rejects(attempt, refusal("not_found", "not_found"));
  }
  await assert.rejects(() => fileFor(d, alice, "file-missing"), refusal("not_found", "not_found"));
  await assert.rejects(() => fileFor(d, alice, null), refusal("not_found", "not_found"));
  assert.deepEqual((await filesOf(d, bob)).map((f) => f.id), []);
  assert.deepEqual((await filesOf(d, alice)).map((f) => f.id), [file.id]);
  assert.equal(await removeFile(d, alice, file.id), file.id);
  assert.equal(await getFile(store.db, file.id), undefined);
});

forEachDatabase("files: a plan without documents is refused with 403 feature_not_allowed", async (store) => {
  const d = deps(store.db);
  await assert.rejects(() => beginUpload(d, user("carol", null), null), (error: unknown) => {
    assert.ok(error instanceof ServiceError);
    assert.equal(error.kind, "forbidden");
    assert.equal(error.code, "feature_not_allowed");
    assert.match(error.message, /does not include documents/);
    return true;
  });
});

forEachDatabase("files: the plan's stored-bytes quota answers 429 and says what to delete", async (store) => {
  await savePlan(store.db, { ...PLAN, id: "tiny", storedBytesQuota: 3_000 });
  const d = deps(store.db);
  const dave = user("dave", "tiny");
  const first = await upload(d, dave, text(2_000));
  await assert.rejects(() => upload(d, dave, text(2_000)), (error: unknown) => {
    assert.ok(error instanceof ServiceError);
    assert.equal(error.kind, "rate_limited");
    assert.equal(error.code, "quota_exceeded");
    assert.match(error.message, /storage quota of 2\.9 KiB/);
    assert.match(error.message, /Delete files/);
    assert.equal(error.meta["x-quota-limit-bytes"], "3000");
    return true;
  });
  assert.equal((await filesOf(d, dave)).length, 1, "the refused upload is not kept");
  // Deleting frees the room again.
  await removeFile(d, dave, first.id);
  await upload(d, dave, text(2_000));
  // Over the quota already: refused before the body is read.
  await upload(d, dave, text(900));
  await upload(d, dave, text(100));
  await assert.rejects(() => beginUpload(d, dave, null), refusal("rate_limited", "quota_exceeded"));
});

forEachDatabase("files: size, count and type limits; the local operator has no plan limits", async (store) => {
  await savePlan(store.db, PLAN);
  const d = deps(store.db);
  const alice = user("alice", "docs");
  await assert.rejects(() => beginUpload(d, alice, 1_000_000), refusal("too_large", "file_too_large"), "a declared size that cannot fit");
  await assert.rejects(() => upload(d, alice, text(10_001)), refusal("too_large", "file_too_large"));
  await assert.rejects(() => upload(d, alice, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0])), refusal("unsupported_media_type", "unsupported_file_type"));
  const grant = await beginUpload(d, alice, null);
  await assert.rejects(() => uploadFile(d, grant, { filename: "a.txt", purpose: "nonsense", bytes: text(10) }), refusal("invalid_request", "invalid_parameter"));
  for (let i = 0; i < 5; i++) await upload(d, alice, text(10));
  await assert.rejects(() => beginUpload(d, alice, null), refusal("rate_limited", "quota_exceeded"), "maxFilesPerUser");
  // No account, no plan: the operator's own disk.
  const big = deps(store.db);
  big.config = { ...big.config, maxStoredBytesPerUser: 0, maxFilesPerUser: 1 };
  for (let i = 0; i < 3; i++) await upload(big, LOCAL, text(100));
  assert.equal((await filesOf(big, LOCAL)).length, 3);
  await assert.rejects(() => filesOf(d, { kind: "anonymous" }), refusal("unauthenticated", "unauthenticated"));
});

/**
 * API keys made and revoked by an operator (`sputnik admin create-key | list-keys | revoke-key`), for
 * headless installs and for handing a key to a service account. Each change writes its audit row in
 * the same transaction; the key itself is returned once and stored only as a hash (src/auth/apiKeys.ts).
 */
import type { Kysely } from "kysely";
import { z } from "zod";
import { countLiveApiKeys, createApiKey, MAX_LIVE_KEYS_PER_USER, type ApiKeyRow } from "../auth/apiKeys.ts";
import { writeAudit } from "../auth/audit.ts";
import { findUserByLogin, type UserRow } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { AdminContext } from "./manageUsers.ts";

/** The same bounds the app API puts on a key (src/http/app/keys.ts). */
export const apiKeyNameSchema = z.string().trim().min(1, "must not be empty").max(100, "at most 100 characters");
export const apiKeyModelsSchema = z.array(z.string().trim().min(1, "a model id must not be empty").max(128, "a model id has at most 128 characters")).min(1).max(100);

export interface CreateKeyInput {
  /** The owner's user name. */
  username: string;
  name: string;
  /** Model ids the key may use; null for every model the owner's plan allows. */
  models: string[] | null;
  expiresAt: number | null;
  /** The admin acting; null from the command line. */
  by: AdminContext | null;
}

/** Makes a key for an active account. Returns the key itself: show it once, it is never stored. */
export async function createKeyForUser(db: Kysely<Database>, input: CreateKeyInput, now: number = Date.now()): Promise<{ key: string; row: ApiKeyRow; user: UserRow }> {
  const user = await userNamed(db, input.username);
  // A key of an account that is not active fails on every request (src/auth/apiKeys.ts): say so now.
  if (user.status !== "active") {
    throw new ServiceError("conflict", `${user.username} is ${user.status}: its keys would not work. Activate the account first.`, { code: "account_not_active", param: "user" });
  }
  if (input.expiresAt !== null && input.expiresAt <= now) {
    throw new ServiceError("invalid_request", "The expiry must be in the future.", { code: "invalid_parameter", param: "expires" });
  }
  const name = valid(apiKeyNameSchema, input.name, "name");
  const models = input.models === null ? null : [...new Set(valid(apiKeyModelsSchema, input.models, "models"))];
  return db.transaction().execute(async (trx) => {
    // Write first, then count (the new key included; over the cap rolls it back). On SQLite, a
    // transaction that reads first holds a snapshot, and its first write fails at once with
    // SQLITE_BUSY if another process (the server, another CLI) committed meanwhile; a transaction
    // that writes first waits for the lock (busy_timeout) instead.
    const { key, row } = await createApiKey(trx, { userId: user.id, name, models, expiresAt: input.expiresAt }, now);
    if ((await countLiveApiKeys(trx, user.id)) > MAX_LIVE_KEYS_PER_USER) {
      throw new ServiceError("conflict", `${user.username} already has ${MAX_LIVE_KEYS_PER_USER} keys; revoke one first.`, { code: "too_many_keys" });
    }
    await writeAudit(
      trx,
      {
        actorUserId: input.by?.userId ?? null,
        action: "api_key.create",
        targetType: "api_key",
        targetId: row.id,
        details: { user_id: user.id, username: user.username, name, models, expires_at: input.expiresAt, prefix: row.prefix },
        ip: input.by?.ip ?? null,
      },
      now,
    );
    return { key, row, user };
  });
}

/** Revokes a live key by id; it stops working on the next request (keys are checked every time). */
export async function revokeKeyById(db: Kysely<Database>, by: AdminContext | null, id: string, now: number = Date.now()): Promise<ApiKeyRow> {
  return db.transaction().execute(async (trx) => {
    // The write first (see createKeyForUser), and only a live row changes: of two revokes racing,
    // one wins and the other is told.
    const result = await trx.updateTable("api_keys").set({ revoked_at: now }).where("id", "=", id).where("revoked_at", "is", null).executeTakeFirst();
    const key = await trx.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
    if (!key) throw new ServiceError("not_found", `No API key has id ${id}.`, { code: "not_found", param: "id" });
    if (Number(result.numUpdatedRows) !== 1) {
      throw new ServiceError("conflict", `API key ${id} was already revoked at ${new Date(key.revoked_at ?? now).toISOString()}.`, { code: "already_revoked", param: "id" });
    }
    await writeAudit(
      trx,
      { actorUserId: by?.userId ?? null, action: "api_key.revoke", targetType: "api_key", targetId: id, details: { user_id: key.user_id, name: key.name, prefix: key.prefix }, ip: by?.ip ?? null },
      now,
    );
    return key;
  });
}

export type ApiKeyWithOwner = ApiKeyRow & { username: string };

/** Every key (revoked ones too, for the record), newest first; one account's when `username` is given. */
export async function listKeysWithOwners(db: Kysely<Database>, opts: { username?: string } = {}): Promise<ApiKeyWithOwner[]> {
  let query = db.selectFrom("api_keys as k").innerJoin("users as u", "u.id", "k.user_id").selectAll("k").select("u.username");
  if (opts.username !== undefined) query = query.where("k.user_id", "=", (await userNamed(db, opts.username)).id);
  return query.orderBy("k.created_at", "desc").orderBy("k.id", "desc").execute();
}

function valid<T>(schema: z.ZodType<T>, value: unknown, param: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ServiceError("invalid_request", `${param}: ${issue?.message ?? "invalid value"}`, { code: "invalid_parameter", param });
}

async function userNamed(db: Kysely<Database>, username: string): Promise<UserRow> {
  // By user name only: `findUserByLogin` would read a name with "@" as an e-mail address.
  const user = username.includes("@") ? undefined : await findUserByLogin(db, username);
  if (!user) throw new ServiceError("not_found", `No account is named ${username}.`, { code: "not_found", param: "user" });
  return user;
}

import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

/**
 * Which of these accounts and API keys may no longer act: accounts disabled (or sent back to
 * pending) and keys revoked or expired since their request was authenticated. Long-running work
 * (a streaming answer) asks this while it runs, so a disabled account or a revoked key stops
 * within a poll interval on every server sharing the database.
 */
export async function withdrawnCredentials(
  db: Kysely<Database>,
  ids: { userIds: readonly string[]; apiKeyIds: readonly string[] },
  now = Date.now(),
): Promise<{ users: Set<string>; apiKeys: Set<string> }> {
  const users = new Set<string>();
  const apiKeys = new Set<string>();
  if (ids.userIds.length > 0) {
    const rows = await db.selectFrom("users").select("id").where("id", "in", [...ids.userIds]).where("status", "=", "active").execute();
    const active = new Set(rows.map((r) => r.id));
    // A user row that is gone counts as withdrawn too.
    for (const id of ids.userIds) if (!active.has(id)) users.add(id);
  }
  if (ids.apiKeyIds.length > 0) {
    const rows = await db
      .selectFrom("api_keys")
      .select("id")
      .where("id", "in", [...ids.apiKeyIds])
      .where("revoked_at", "is", null)
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .execute();
    const valid = new Set(rows.map((r) => r.id));
    for (const id of ids.apiKeyIds) if (!valid.has(id)) apiKeys.add(id);
  }
  return { users, apiKeys };
}

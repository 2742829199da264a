import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `length` characters from `alphabet`, uniformly (rejection sampling: no modulo bias). */
export function randomString(length: number, alphabet: string = BASE62): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit) out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Hex SHA-256: how high-entropy secrets (keys, session tokens, codes) are stored and looked up. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

export function hmacHex(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text, "utf8").digest("hex");
}

/** Constant-time string comparison (lengths may differ). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

const SECRET_KEY = "session_secret";

/**
 * The service's secret (it keys CSRF tokens): generated on first run and kept in the database, so
 * every replica shares it and no install ships with a built-in constant. Never exposed by any API.
 */
export async function serviceSecret(db: Kysely<Database>, now: number = Date.now()): Promise<string> {
  // Insert-if-absent then read: replicas starting together all end up with the winner's secret.
  await db
    .insertInto("settings")
    .values({ key: SECRET_KEY, value: randomBytes(32).toString("base64url"), updated_at: now, updated_by: null })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  const row = await db.selectFrom("settings").select("value").where("key", "=", SECRET_KEY).executeTakeFirstOrThrow();
  return row.value;
}

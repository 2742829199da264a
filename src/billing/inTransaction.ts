import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

/**
 * Runs `work` in the caller's transaction when `db` is one (so a billing change joins a larger
 * change, such as redeeming an access code at sign-up), else in a transaction of its own.
 */
export function inTransaction<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}

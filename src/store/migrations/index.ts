import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_request_log.ts";
import * as m0100 from "./0100_accounts.ts";
import * as m0200 from "./0200_conversations.ts";
import * as m0300 from "./0300_billing.ts";
import * as m0400 from "./0400_ledger_items.ts";
import * as m0410 from "./0410_default_plan_limits.ts";
import * as m0500 from "./0500_oidc_identities.ts";
import * as m0510 from "./0510_second_factor.ts";
import * as m0520 from "./0520_session_sign_in_method.ts";
import * as m0530 from "./0530_audits.ts";
import * as m0540 from "./0540_moderation_events.ts";
import * as m0550 from "./0550_conversation_features.ts";
import * as m0560 from "./0560_search_documents.ts";
import * as m0565 from "./0565_plan_stored_bytes_quota.ts";
import * as m0570 from "./0570_message_sources.ts";
import * as m0580 from "./0580_chunk_vectors.ts";

/*
 * Every migration, in order. Listed statically (no directory scan) so they load the same way from
 * any working directory, under tsx or bundled.
 *
 * To add one:
 * 1. Create `NNNN_what_it_does.ts` here with the next number (zero-padded to 4 digits), exporting
 *    `up(db: Kysely<any>)` and, where it can be undone, `down(db)`. Type `db` as Kysely<any>: a
 *    migration describes the schema at its own version, not today's `schema.ts`.
 * 2. Import it below and add it to `migrations` under its file name without `.ts`.
 * 3. Update the table interfaces in `../schema.ts`.
 * 4. Stay portable: use the schema builder only (no dialect-specific SQL), text ids, `bigint`
 *    milliseconds for timestamps, `integer` 0/1 for booleans, `bigint` micro-units for money.
 * 5. Don't open transactions inside a migration: each run already is one (all pending migrations
 *    commit together or not at all, on both dialects), and replicas starting together wait their turn.
 * 6. Never edit a migration that has been committed: databases in the field already ran it.
 *    Write a new one instead. Names run in sort order and must only ever be appended.
 *
 * Run your tests with `forEachDatabase` (test/support/databases.ts) so they pass on both dialects.
 */
export const migrations: Record<string, Migration> = {
  "0001_request_log": m0001,
  "0100_accounts": m0100,
  "0200_conversations": m0200,
  "0300_billing": m0300,
  "0400_ledger_items": m0400,
  "0410_default_plan_limits": m0410,
  "0500_oidc_identities": m0500,
  "0510_second_factor": m0510,
  "0520_session_sign_in_method": m0520,
  "0530_audits": m0530,
  "0540_moderation_events": m0540,
  "0550_conversation_features": m0550,
  "0560_search_documents": m0560,
  "0565_plan_stored_bytes_quota": m0565,
  "0570_message_sources": m0570,
  "0580_chunk_vectors": m0580,
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};

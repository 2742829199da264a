import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { Database, UsageLedgerTable, UsageStatus } from "../store/schema.ts";
import type { LineItem } from "./lineItems.ts";

/**
 * The usage ledger: one row per metered request. The row is written when the request is admitted
 * (status `open`, holding its reservation and the prices quoted at its start) and updated once
 * when it settles, in the same transaction as the balance change. A row left `open` by a process
 * that died is closed as `interrupted` by the lease sweep (see meter.ts). A settled row has line
 * items (`ledger_items`, see lineItems.ts) written in that same transaction; its cost_micros is
 * their sum, kept on the row for reports.
 */

export type LedgerRow = Selectable<UsageLedgerTable>;
export type SettledStatus = Exclude<UsageStatus, "open" | "interrupted">;

export const USAGE_STATUSES: readonly UsageStatus[] = ["open", "completed", "stopped", "failed", "interrupted"];

export async function insertOpenEntry(trx: Transaction<Database>, row: LedgerRow): Promise<void> {
  await trx.insertInto("usage_ledger").values(row).execute();
}

export interface Closing {
  status: SettledStatus | "interrupted";
  cacheHitTokens: number;
  cacheMissTokens: number;
  reasoningTokens: number;
  answerTokens: number;
  costMicros: number;
  chargedMicros: number;
  endedAt: number;
}

/**
 * Closes an open row; returns it as stored, or undefined when it was not open any more (already
 * settled, or released by the sweep) — the caller must then not touch the balance.
 */
export async function closeEntry(trx: Transaction<Database>, id: string, closing: Closing): Promise<LedgerRow | undefined> {
  return trx
    .updateTable("usage_ledger")
    .set({
      status: closing.status,
      cache_hit_tokens: closing.cacheHitTokens,
      cache_miss_tokens: closing.cacheMissTokens,
      reasoning_tokens: closing.reasoningTokens,
      answer_tokens: closing.answerTokens,
      cost_micros: closing.costMicros,
      charged_micros: closing.chargedMicros,
      ended_at: closing.endedAt,
      holder: null,
      lease_until: null,
    })
    .where("id", "=", id)
    .where("status", "=", "open")
    .returningAll()
    .executeTakeFirst();
}

/** Extends the leases of the open rows `ids` (this process's live requests) in one statement. */
export async function renewLeases(db: Kysely<Database>, ids: string[], until: number): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await db
    .updateTable("usage_ledger")
    .set({ lease_until: until })
    .where("id", "in", ids)
    .where("status", "=", "open")
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Open rows whose process is gone: those whose lease ran out before `now` or, when `everyOther`
 * (the database has no other server: SQLite), every one `holder` (this process) does not hold.
 */
export async function abandonedOpenEntries(
  db: Kysely<Database>,
  opts: { now: number; holder: string; everyOther: boolean },
  limit = 500,
): Promise<LedgerRow[]> {
  let q = db.selectFrom("usage_ledger").selectAll().where("status", "=", "open");
  q = opts.everyOther
    ? q.where((eb) => eb.or([eb("holder", "is", null), eb("holder", "!=", opts.holder)]))
    : q.where("lease_until", "<", opts.now);
  return q.orderBy("lease_until").limit(limit).execute();
}

/** Writes a settled row's items, in order, in the transaction that closes the row. */
export async function insertItems(trx: Transaction<Database>, entryId: string, items: readonly LineItem[]): Promise<void> {
  if (items.length === 0) return;
  await trx
    .insertInto("ledger_items")
    .values(
      items.map((item, ordinal) => ({
        entry_id: entryId,
        ordinal,
        meter: item.meter,
        quantity: item.quantity,
        unit_price_micros: item.unitPriceMicros,
        per: item.per,
        amount_micros: item.amountMicros,
      })),
    )
    .execute();
}

/** The items of rows `entryIds`, in order, by row id (rows without items are absent). */
export async function itemsOf(db: Kysely<Database>, entryIds: readonly string[]): Promise<Map<string, LineItem[]>> {
  const byEntry = new Map<string, LineItem[]>();
  // Chunks stay under the bound-parameter limits of both dialects.
  for (let i = 0; i < entryIds.length; i += 1000) {
    const rows = await db
      .selectFrom("ledger_items")
      .selectAll()
      .where("entry_id", "in", entryIds.slice(i, i + 1000))
      .orderBy("entry_id")
      .orderBy("ordinal")
      .execute();
    for (const r of rows) {
      let list = byEntry.get(r.entry_id);
      if (!list) byEntry.set(r.entry_id, (list = []));
      list.push({ meter: r.meter, quantity: r.quantity, unitPriceMicros: r.unit_price_micros, per: r.per, amountMicros: r.amount_micros });
    }
  }
  return byEntry;
}

export async function getEntry(db: Kysely<Database>, id: string): Promise<LedgerRow | undefined> {
  return db.selectFrom("usage_ledger").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Tokens (prompt + completion) a user's requests used from `since` on: what quotas count. */
export async function tokensUsedSince(db: Kysely<Database>, userId: string, since: number): Promise<number> {
  const row = await db
    .selectFrom("usage_ledger")
    .select(sql<number>`coalesce(sum(cache_hit_tokens + cache_miss_tokens + reasoning_tokens + answer_tokens), 0)`.as("tokens"))
    .where("user_id", "=", userId)
    .where("started_at", ">=", since)
    .executeTakeFirstOrThrow();
  return Number(row.tokens);
}

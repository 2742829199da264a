import { sql, type Kysely, type Transaction } from "kysely";
import { newId } from "../store/ids.ts";
import type { CreditTable, Database } from "../store/schema.ts";
import { inTransaction } from "./inTransaction.ts";
import { assertMicros } from "./money.ts";

/**
 * Balances in micro-units. Money moves only through three statements, each a single UPDATE whose
 * WHERE clause or arithmetic keeps every column non-negative, so the guarantee holds under any
 * concurrency (PostgreSQL re-checks the WHERE after taking the row lock; SQLite has one writer):
 *
 * - reserve: `reserved += x` only where `granted + topped_up - reserved >= x`;
 * - settle:  `reserved -= r` and the charge `c ≤ r` taken from granted credit first, then topped-up;
 * - credit:  `granted += x` or `topped_up += x`, with a credits row saying why.
 *
 * The table's CHECK constraints (reserved ≤ granted + topped_up, all ≥ 0) back this up.
 */

export interface Balance {
  userId: string;
  grantedMicros: number;
  toppedUpMicros: number;
  reservedMicros: number;
}

export type CreditKind = CreditTable["kind"];

export interface CreditInput {
  userId: string;
  kind: CreditKind;
  amountMicros: number;
  /** Where it came from: "access_code", "admin", "top_up", … */
  source: string;
  note?: string | null;
  /** The admin (or other user) who added it, when a person did. */
  createdBy?: string | null;
}

export function totalMicros(balance: Balance): number {
  return balance.grantedMicros + balance.toppedUpMicros;
}

/** What a new request may still reserve. */
export function availableMicros(balance: Balance): number {
  return totalMicros(balance) - balance.reservedMicros;
}

/** A user's balance; all zeros when they never had credit. */
export async function getBalance(db: Kysely<Database>, userId: string): Promise<Balance> {
  const row = await db.selectFrom("balances").selectAll().where("user_id", "=", userId).executeTakeFirst();
  return {
    userId,
    grantedMicros: row?.granted_micros ?? 0,
    toppedUpMicros: row?.topped_up_micros ?? 0,
    reservedMicros: row?.reserved_micros ?? 0,
  };
}

/**
 * Adds credit and records it, atomically. Pass a transaction to make it part of a larger change
 * (redeeming an access code at sign-up); given the database, it opens its own.
 */
export async function addCredit(db: Kysely<Database>, input: CreditInput, now = Date.now()): Promise<Balance> {
  assertMicros(input.amountMicros, "amountMicros");
  if (input.amountMicros === 0) throw new RangeError("a credit must be more than zero");
  if (input.kind !== "granted" && input.kind !== "topped_up") throw new RangeError(`credit kind must be granted or topped_up, got ${String(input.kind)}`);
  const apply = async (trx: Kysely<Database>) => {
    await trx
      .insertInto("credits")
      .values({
        id: newId(now),
        user_id: input.userId,
        kind: input.kind,
        amount_micros: input.amountMicros,
        source: input.source,
        note: input.note ?? null,
        created_by: input.createdBy ?? null,
        created_at: now,
      })
      .execute();
    const column = input.kind === "granted" ? "granted_micros" : "topped_up_micros";
    await trx
      .insertInto("balances")
      .values({
        user_id: input.userId,
        granted_micros: input.kind === "granted" ? input.amountMicros : 0,
        topped_up_micros: input.kind === "topped_up" ? input.amountMicros : 0,
        reserved_micros: 0,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.column("user_id").doUpdateSet({ [column]: sql`balances.${sql.ref(column)} + ${input.amountMicros}`, updated_at: now }),
      )
      .execute();
    return getBalance(trx, input.userId);
  };
  return inTransaction(db, apply);
}

export interface CreditRecord {
  id: string;
  kind: CreditKind;
  amountMicros: number;
  source: string;
  note: string | null;
  createdBy: string | null;
  createdAt: number;
}

/** A user's credits, newest first. */
export async function listCredits(db: Kysely<Database>, userId: string, limit = 100): Promise<CreditRecord[]> {
  const rows = await db
    .selectFrom("credits")
    .selectAll()
    .where("user_id", "=", userId)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    amountMicros: r.amount_micros,
    source: r.source,
    note: r.note,
    createdBy: r.created_by,
    createdAt: r.created_at,
  }));
}

/**
 * Holds `micros` of the user's available balance for a request, or returns false (changing
 * nothing) when the balance cannot cover it. The check and the hold are one statement.
 */
export async function reserveFunds(trx: Transaction<Database>, userId: string, micros: number, now = Date.now()): Promise<boolean> {
  assertMicros(micros, "reservation");
  if (micros === 0) return true;
  const result = await trx
    .updateTable("balances")
    .set({ reserved_micros: sql`reserved_micros + ${micros}`, updated_at: now })
    .where("user_id", "=", userId)
    .where(sql<boolean>`granted_micros + topped_up_micros - reserved_micros >= ${micros}`)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Ends a reservation of `reservedMicros`, taking `chargedMicros` (≤ the reservation) from the
 * balance: granted credit first, then topped-up. Both SET expressions read the row as it was,
 * on SQLite and PostgreSQL alike.
 */
export async function settleFunds(
  trx: Transaction<Database>,
  userId: string,
  reservedMicros: number,
  chargedMicros: number,
  now = Date.now(),
): Promise<void> {
  assertMicros(reservedMicros, "reservation");
  assertMicros(chargedMicros, "charge");
  if (chargedMicros > reservedMicros) throw new RangeError(`charge ${chargedMicros} exceeds its reservation ${reservedMicros}`);
  if (reservedMicros === 0) return;
  const c = chargedMicros;
  const result = await trx
    .updateTable("balances")
    .set({
      reserved_micros: sql`reserved_micros - ${reservedMicros}`,
      granted_micros: sql`case when granted_micros >= ${c} then granted_micros - ${c} else 0 end`,
      topped_up_micros: sql`case when granted_micros >= ${c} then topped_up_micros else topped_up_micros - (${c} - granted_micros) end`,
      updated_at: now,
    })
    .where("user_id", "=", userId)
    .executeTakeFirst();
  if (result.numUpdatedRows !== 1n) throw new Error(`no balance row for user ${userId} to settle a reservation against`);
}

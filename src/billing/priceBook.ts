import type { Kysely, Selectable } from "kysely";
import type { Database, PriceTable, PriceWindowTable } from "../store/schema.ts";
import { inTransaction } from "./inTransaction.ts";
import { DEFAULT_PRICE_MODEL, validatePriceSet, type PriceSet, type TokenPrices } from "./pricing.ts";

/**
 * The stored prices: one set per model plus an optional default set ("*") for models without
 * their own. Read from the database on every request, so an admin's change reaches every replica
 * at once; each request keeps the prices quoted at its start.
 */

/** The price set that applies to `model`: its own, else the default, else undefined (free). */
export async function priceSetFor(db: Kysely<Database>, model: string): Promise<PriceSet | undefined> {
  const rows = await db.selectFrom("prices").selectAll().where("model", "in", [model, DEFAULT_PRICE_MODEL]).execute();
  const row = rows.find((r) => r.model === model) ?? rows.find((r) => r.model === DEFAULT_PRICE_MODEL);
  if (!row) return undefined;
  const windows = await db.selectFrom("price_windows").selectAll().where("model", "=", row.model).orderBy("start_minute").execute();
  return toSet(row, windows);
}

export async function listPriceSets(db: Kysely<Database>): Promise<PriceSet[]> {
  const [rows, windows] = await Promise.all([
    db.selectFrom("prices").selectAll().orderBy("model").execute(),
    db.selectFrom("price_windows").selectAll().orderBy("model").orderBy("start_minute").execute(),
  ]);
  return rows.map((row) => toSet(row, windows.filter((w) => w.model === row.model)));
}

/** Replaces a model's whole price set (base and windows) atomically (in `db` when it is a transaction). */
export async function savePriceSet(db: Kysely<Database>, set: PriceSet, updatedBy: string | null, now = Date.now()): Promise<PriceSet> {
  validatePriceSet(set);
  await inTransaction(db, async (trx) => {
    const base = {
      input_cache_hit_micros: set.base.inputCacheHit,
      input_cache_miss_micros: set.base.inputCacheMiss,
      output_micros: set.base.output,
      updated_at: now,
      updated_by: updatedBy,
    };
    await trx
      .insertInto("prices")
      .values({ model: set.model, ...base })
      .onConflict((oc) => oc.column("model").doUpdateSet(base))
      .execute();
    await trx.deleteFrom("price_windows").where("model", "=", set.model).execute();
    if (set.windows.length > 0) {
      await trx
        .insertInto("price_windows")
        .values(
          set.windows.map((w) => ({
            model: set.model,
            start_minute: w.start,
            end_minute: w.end,
            input_cache_hit_micros: w.prices.inputCacheHit,
            input_cache_miss_micros: w.prices.inputCacheMiss,
            output_micros: w.prices.output,
          })),
        )
        .execute();
    }
  });
  return set;
}

/** Removes a model's price set (its windows go with it); true when there was one. */
export async function deletePriceSet(db: Kysely<Database>, model: string): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    await trx.deleteFrom("price_windows").where("model", "=", model).execute();
    const result = await trx.deleteFrom("prices").where("model", "=", model).executeTakeFirst();
    return result.numDeletedRows > 0n;
  });
}

function toSet(row: Selectable<PriceTable>, windows: Selectable<PriceWindowTable>[]): PriceSet {
  const prices = (r: { input_cache_hit_micros: number; input_cache_miss_micros: number; output_micros: number }): TokenPrices => ({
    inputCacheHit: r.input_cache_hit_micros,
    inputCacheMiss: r.input_cache_miss_micros,
    output: r.output_micros,
  });
  return {
    model: row.model,
    base: prices(row),
    windows: windows.map((w) => ({ start: w.start_minute, end: w.end_minute, prices: prices(w) })),
  };
}

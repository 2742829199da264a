import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { assertUnitPrice, METER_PATTERN, TOKEN_METERS, type UnitPrice } from "./lineItems.ts";

/**
 * Prices of the meters that are not tokens (a search, stored bytes…): an admin-edited list in the
 * database, over defaults from the configuration (`billing.featurePrices`). A meter with neither is
 * free. Like token prices, they are read when a request starts and frozen on its charge.
 */

export interface FeaturePrice extends UnitPrice {
  meter: string;
  /** Where it comes from: set in the database by an admin, or the configured default. */
  source: "stored" | "default";
  updatedAt: number | null;
  updatedBy: string | null;
}

/** Configured defaults, meter → price (billing.featurePrices). */
export type FeaturePriceDefaults = Readonly<Record<string, UnitPrice>>;

export function validateMeterName(meter: string): void {
  if (!METER_PATTERN.test(meter)) throw new RangeError(`a meter name is 1–64 lowercase letters, digits or _, starting with a letter; got ${JSON.stringify(meter)}`);
  if (TOKEN_METERS.includes(meter)) throw new RangeError(`${meter} is priced by the model's price set, not the feature price list`);
}

/** Every feature price in force now: the stored ones over the defaults. */
export async function featurePricesNow(db: Kysely<Database>, defaults: FeaturePriceDefaults = {}): Promise<Record<string, UnitPrice>> {
  const prices: Record<string, UnitPrice> = {};
  for (const [meter, price] of Object.entries(defaults)) prices[meter] = { unitPriceMicros: price.unitPriceMicros, per: price.per };
  for (const row of await db.selectFrom("feature_prices").select(["meter", "unit_price_micros", "per"]).execute()) {
    prices[row.meter] = { unitPriceMicros: row.unit_price_micros, per: row.per };
  }
  return prices;
}

/** The list an admin sees: stored prices and the defaults they do not override, by meter. */
export async function listFeaturePrices(db: Kysely<Database>, defaults: FeaturePriceDefaults = {}): Promise<FeaturePrice[]> {
  const rows = await db.selectFrom("feature_prices").selectAll().execute();
  const list: FeaturePrice[] = rows.map((r) => ({ meter: r.meter, unitPriceMicros: r.unit_price_micros, per: r.per, source: "stored", updatedAt: r.updated_at, updatedBy: r.updated_by }));
  for (const [meter, price] of Object.entries(defaults)) {
    if (!rows.some((r) => r.meter === meter)) list.push({ meter, unitPriceMicros: price.unitPriceMicros, per: price.per, source: "default", updatedAt: null, updatedBy: null });
  }
  return list.sort((a, b) => a.meter.localeCompare(b.meter));
}

/** Sets a meter's price (pass a transaction to make it part of a larger change). */
export async function saveFeaturePrice(db: Kysely<Database>, meter: string, price: UnitPrice, updatedBy: string | null, now = Date.now()): Promise<FeaturePrice> {
  validateMeterName(meter);
  assertUnitPrice(price, meter);
  const values = { unit_price_micros: price.unitPriceMicros, per: price.per, updated_at: now, updated_by: updatedBy };
  await db
    .insertInto("feature_prices")
    .values({ meter, ...values })
    .onConflict((oc) => oc.column("meter").doUpdateSet(values))
    .execute();
  return { meter, unitPriceMicros: price.unitPriceMicros, per: price.per, source: "stored", updatedAt: now, updatedBy };
}

/** Removes a stored price (the configured default, if any, applies again); true when there was one. */
export async function deleteFeaturePrice(db: Kysely<Database>, meter: string): Promise<boolean> {
  const result = await db.deleteFrom("feature_prices").where("meter", "=", meter).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

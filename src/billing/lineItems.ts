import { toMicros } from "./money.ts";
import type { MeteredTokens, TokenPrices } from "./pricing.ts";

/**
 * Line items: what a ledger row is made of. Each item is one meter (tokens of a kind, searches,
 * stored bytes…), a quantity, the unit price frozen at the request's start and the amount it came
 * to. A row's cost is the sum of its items' amounts — items are the source of truth.
 *
 * Rounding: the exact cost Σ quantity × price / per is rounded UP once, on the total (as
 * pricing.ts always did), and that total is then split over the items by largest remainder, so
 * every item's amount is its exact amount rounded down or up and the amounts add up to the total.
 */

/** The meters Sputnik knows. Token prices are per million tokens; a search is priced per search. */
export const METERS = {
  inputCacheHit: "input_cache_hit_tokens",
  inputCacheMiss: "input_cache_miss_tokens",
  /** Reasoning plus answer tokens. */
  output: "output_tokens",
  search: "search",
  storedBytes: "stored_bytes",
} as const;

/** Token meters are priced by a model's price set, never by the feature price list. */
export const TOKEN_METERS: readonly string[] = [METERS.inputCacheHit, METERS.inputCacheMiss, METERS.output];

export const TOKENS_PER_PRICE_UNIT = 1_000_000;

export const METER_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

/** A price of `unitPriceMicros` for every `per` units of a meter (1_000_000 tokens, 1 search…). */
export interface UnitPrice {
  unitPriceMicros: number;
  per: number;
}

export const FREE_UNIT: UnitPrice = Object.freeze({ unitPriceMicros: 0, per: 1 });

export interface PricedQuantity {
  meter: string;
  quantity: number;
  price: UnitPrice;
}

export interface LineItem {
  meter: string;
  quantity: number;
  unitPriceMicros: number;
  per: number;
  amountMicros: number;
}

/** A metered quantity as callers report it (the search stage passes `{ meter: "search", quantity: 1 }`). */
export interface MeteredItem {
  meter: string;
  quantity: number;
}

export function assertQuantity(quantity: unknown, what: string): asserts quantity is number {
  if (typeof quantity !== "number" || !Number.isSafeInteger(quantity) || quantity < 0) {
    throw new RangeError(`${what} must be a whole non-negative number, got ${String(quantity)}`);
  }
}

export function assertUnitPrice(price: UnitPrice, what: string): void {
  if (!Number.isSafeInteger(price.unitPriceMicros) || price.unitPriceMicros < 0) {
    throw new RangeError(`${what}: the price must be a whole, non-negative number of micro-units`);
  }
  if (!Number.isSafeInteger(price.per) || price.per < 1) throw new RangeError(`${what}: 'per' must be a whole number of units, at least 1`);
}

/** The three token items of a request (reasoning counts as output). */
export function tokenQuantities(tokens: MeteredTokens, prices: TokenPrices): PricedQuantity[] {
  const per = TOKENS_PER_PRICE_UNIT;
  return [
    { meter: METERS.inputCacheHit, quantity: tokens.cacheHit, price: { unitPriceMicros: prices.inputCacheHit, per } },
    { meter: METERS.inputCacheMiss, quantity: tokens.cacheMiss, price: { unitPriceMicros: prices.inputCacheMiss, per } },
    { meter: METERS.output, quantity: tokens.output, price: { unitPriceMicros: prices.output, per } },
  ];
}

/**
 * Sums repeated meters (two searches reported apart are one item of 2), keeping first-seen order,
 * and checks names and quantities.
 */
export function mergeItems(items: readonly MeteredItem[]): MeteredItem[] {
  const merged = new Map<string, number>();
  for (const [i, item] of items.entries()) {
    if (!METER_PATTERN.test(item.meter)) throw new RangeError(`items[${i}].meter must be 1–64 lowercase letters, digits or _, got ${JSON.stringify(item.meter)}`);
    if (TOKEN_METERS.includes(item.meter)) throw new RangeError(`items[${i}]: ${item.meter} is metered from the engine's usage, not passed as an item`);
    assertQuantity(item.quantity, `items[${i}].quantity`);
    merged.set(item.meter, (merged.get(item.meter) ?? 0) + item.quantity);
  }
  return [...merged].map(([meter, quantity]) => ({ meter, quantity }));
}

/**
 * Prices `quantities` into line items whose amounts add up to ⌈Σ exact amounts⌉ micros. Items of
 * quantity 0 are left out (nothing was metered). Monotone: more of any quantity never costs less,
 * so a reservation priced this way for the maximum quantities covers the settled total.
 */
export function priceItems(quantities: readonly PricedQuantity[]): { items: LineItem[]; totalMicros: number } {
  const used = quantities.filter((q) => {
    assertQuantity(q.quantity, `${q.meter} quantity`);
    assertUnitPrice(q.price, q.meter);
    return q.quantity > 0;
  });
  if (used.length === 0) return { items: [], totalMicros: 0 };
  // Exact amounts as numerators over one common denominator (the lcm of the `per`s).
  const denominator = used.reduce((d, q) => lcm(d, BigInt(q.price.per)), 1n);
  const numerators = used.map((q) => BigInt(q.quantity) * BigInt(q.price.unitPriceMicros) * (denominator / BigInt(q.price.per)));
  const exact = numerators.reduce((a, b) => a + b, 0n);
  const total = (exact + denominator - 1n) / denominator;
  const amounts = numerators.map((n) => n / denominator);
  // Hand the micros left after flooring to the largest remainders (earlier items first on ties).
  let left = total - amounts.reduce((a, b) => a + b, 0n);
  const byRemainder = numerators.map((n, i) => ({ i, r: n % denominator })).sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i, r } of byRemainder) {
    if (left === 0n || r === 0n) break;
    amounts[i]! += 1n;
    left -= 1n;
  }
  return {
    items: used.map((q, i) => ({ meter: q.meter, quantity: q.quantity, unitPriceMicros: q.price.unitPriceMicros, per: q.price.per, amountMicros: toMicros(amounts[i]!) })),
    totalMicros: toMicros(total),
  };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function lcm(a: bigint, b: bigint): bigint {
  return (a / gcd(a, b)) * b;
}

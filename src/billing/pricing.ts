import { ceilDiv, isMicros, toMicros } from "./money.ts";
import { minuteOfDay } from "./zonedTime.ts";

/**
 * Prices per million tokens, in micro-units: DeepSeek-R1's launch prices ($0.14 cache hit,
 * $0.55 cache miss, $2.19 output) are 140_000 / 550_000 / 2_190_000. Reasoning tokens are
 * output tokens.
 */
export interface TokenPrices {
  inputCacheHit: number;
  inputCacheMiss: number;
  output: number;
}

/**
 * A time-of-day window with its own prices (DeepSeek's off-peak discount), in minutes since
 * local midnight of the billing time zone. `start` is inclusive, `end` exclusive; a window whose
 * end is not after its start runs across midnight (16:30–00:30).
 */
export interface PriceWindow {
  start: number;
  end: number;
  prices: TokenPrices;
}

/** What a model costs: base prices, and windows that override them part of the day. */
export interface PriceSet {
  /** The model id, or DEFAULT_PRICE_MODEL for the fallback used by models without their own. */
  model: string;
  base: TokenPrices;
  windows: PriceWindow[];
}

/** The price set that applies to every model without one of its own. */
export const DEFAULT_PRICE_MODEL = "*";

export const FREE: TokenPrices = Object.freeze({ inputCacheHit: 0, inputCacheMiss: 0, output: 0 });

/** The prices in force for one request, frozen at its start and stored on its ledger row. */
export interface PriceQuote extends TokenPrices {
  /** Which price set matched: the model's own, the default ("*"), or null (none: free). */
  source: string | null;
  /** The window in force, as "HH:MM-HH:MM", or null for the base prices. */
  window: string | null;
}

export interface MeteredTokens {
  cacheHit: number;
  cacheMiss: number;
  /** Reasoning plus answer tokens. */
  output: number;
}

const MINUTES_PER_DAY = 24 * 60;
const TOKENS_PER_PRICE_UNIT = 1_000_000n;

/** "HH:MM" (00:00–23:59) to minutes since midnight. */
export function parseClock(text: string): number {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!match) throw new RangeError(`not a time of day HH:MM (00:00–23:59): ${JSON.stringify(text)}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

export function formatClock(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

export function windowLabel(window: Pick<PriceWindow, "start" | "end">): string {
  return `${formatClock(window.start)}-${formatClock(window.end)}`;
}

export function windowContains(window: Pick<PriceWindow, "start" | "end">, minute: number): boolean {
  return window.start < window.end
    ? minute >= window.start && minute < window.end
    : minute >= window.start || minute < window.end;
}

/**
 * Checks a price set before it is stored: whole non-negative prices, windows that are not empty
 * and do not overlap (so exactly one price applies at any minute).
 */
export function validatePriceSet(set: PriceSet): void {
  if (!set.model) throw new RangeError("a price set needs a model");
  validatePrices(set.base, "base prices");
  const covered = new Array<string | undefined>(MINUTES_PER_DAY);
  for (const window of set.windows) {
    const label = windowLabel(window);
    for (const bound of [window.start, window.end]) {
      if (!Number.isInteger(bound) || bound < 0 || bound >= MINUTES_PER_DAY) throw new RangeError(`window ${label}: bounds must be minutes of the day`);
    }
    if (window.start === window.end) throw new RangeError(`window ${label} is empty: its start and end are the same`);
    validatePrices(window.prices, `window ${label}`);
    for (let m = 0; m < MINUTES_PER_DAY; m++) {
      if (!windowContains(window, m)) continue;
      if (covered[m]) throw new RangeError(`windows ${covered[m]} and ${label} overlap at ${formatClock(m)}`);
      covered[m] = label;
    }
  }
}

function validatePrices(prices: TokenPrices, what: string): void {
  for (const key of ["inputCacheHit", "inputCacheMiss", "output"] as const) {
    if (!isMicros(prices[key])) throw new RangeError(`${what}: ${key} must be a whole, non-negative number of micro-units per million tokens`);
  }
}

/** The prices in force at instant `at` in `timeZone`; free when there is no price set at all. */
export function quoteAt(set: PriceSet | undefined, at: number, timeZone: string): PriceQuote {
  if (!set) return { ...FREE, source: null, window: null };
  const minute = minuteOfDay(at, timeZone);
  const window = set.windows.find((w) => windowContains(w, minute));
  const prices = window?.prices ?? set.base;
  return {
    inputCacheHit: prices.inputCacheHit,
    inputCacheMiss: prices.inputCacheMiss,
    output: prices.output,
    source: set.model,
    window: window ? windowLabel(window) : null,
  };
}

/**
 * The cost of `tokens` at `prices`, in micros. The exact sum Σ tokens × price / 1e6 is computed
 * in BigInt and rounded UP once, on the total: a request is never billed less than it used, and
 * never more than one micro above it. Because the rounding is monotone, a reservation computed
 * the same way for more tokens always covers the settled cost.
 */
export function costMicros(tokens: MeteredTokens, prices: TokenPrices): number {
  for (const [name, count] of Object.entries(tokens)) {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`token count ${name} must be a whole non-negative number, got ${count}`);
  }
  const exact =
    BigInt(tokens.cacheHit) * BigInt(prices.inputCacheHit) +
    BigInt(tokens.cacheMiss) * BigInt(prices.inputCacheMiss) +
    BigInt(tokens.output) * BigInt(prices.output);
  return toMicros(ceilDiv(exact, TOKENS_PER_PRICE_UNIT));
}

/** A price reduced by `percent` (0–100), rounded half up to a whole micro per million tokens. */
export function discounted(prices: TokenPrices, percent: number): TokenPrices {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new RangeError(`discount must be a whole percentage 0–100, got ${percent}`);
  const cut = (price: number) => toMicros((BigInt(price) * BigInt(100 - percent) * 2n + 100n) / 200n);
  return { inputCacheHit: cut(prices.inputCacheHit), inputCacheMiss: cut(prices.inputCacheMiss), output: cut(prices.output) };
}

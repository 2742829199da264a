/**
 * Money is integer micro-units everywhere: 1 unit of the configured currency (USD by default) is
 * 1_000_000 micros. Amounts are JS numbers holding whole micros (exact up to 2^53 micros, about
 * nine billion dollars); arithmetic that multiplies prices by token counts runs in BigInt so that
 * no intermediate result is ever rounded.
 */
export const MICROS_PER_UNIT = 1_000_000;

/** True for a whole, non-negative micro amount that a JS number holds exactly. */
export function isMicros(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function assertMicros(value: unknown, name: string): asserts value is number {
  if (!isMicros(value)) throw new RangeError(`${name} must be a whole, non-negative number of micro-units, got ${String(value)}`);
}

/**
 * Formats micros as a decimal string without going through floats: at least `minDecimals`
 * decimals (2, as DeepSeek shows balances), more when the amount needs them, trailing zeros
 * beyond the minimum trimmed. 9_070 → "0.00907", 110_000_000 → "110.00".
 */
export function formatMicros(micros: number, minDecimals = 2): string {
  if (!Number.isSafeInteger(micros)) throw new RangeError(`not a whole micro amount: ${micros}`);
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_UNIT);
  let fraction = String(abs % MICROS_PER_UNIT).padStart(6, "0");
  while (fraction.length > minDecimals && fraction.endsWith("0")) fraction = fraction.slice(0, -1);
  return fraction.length > 0 ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/**
 * Parses a decimal amount ("0.14", "12", "2.190000") into micros, exactly. More than six
 * decimals, signs, exponents and anything else that isn't a plain decimal are refused.
 */
export function parseAmount(text: string): number {
  const match = /^(\d{1,10})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!match) throw new RangeError(`not a decimal amount with at most 6 decimals: ${JSON.stringify(text)}`);
  const whole = Number(match[1]);
  const fraction = Number((match[2] ?? "").padEnd(6, "0"));
  return whole * MICROS_PER_UNIT + fraction;
}

/** ceil(numerator / denominator) for non-negative BigInts. */
export function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

/** A BigInt micro amount back to a number, refusing one a JS number could not hold exactly. */
export function toMicros(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < 0n) throw new RangeError(`micro amount out of range: ${value}`);
  return Number(value);
}

/**
 * Checks the billing forms run before sending, so a typo is named next to its field at once. They
 * mirror the server's rules (src/http/app/billingParams.ts), which stay the authority: anything
 * these let through and the server refuses is shown in the server's own words.
 */

const AMOUNT = /^\d{1,10}(\.\d{1,6})?$/;
const CLOCK = /^([01]\d|2[0-3]):[0-5]\d$/;

/** A decimal amount ("2.19"): at most 6 decimals, no sign or exponent. */
export function amountProblem(field: string, text: string, opts: { positive?: boolean } = {}): string | null {
  const value = text.trim();
  if (!value) return `${field}: enter an amount.`;
  if (!AMOUNT.test(value)) return `${field}: "${value}" is not an amount; use digits with at most 6 decimals, like 2.19.`;
  if (opts.positive && /^[0.]+$/.test(value)) return `${field}: must be more than zero.`;
  return null;
}

export function clockProblem(field: string, text: string): string | null {
  return CLOCK.test(text.trim()) ? null : `${field}: "${text.trim()}" is not a time of day; use HH:MM, 00:00–23:59.`;
}

/** An optional whole number within bounds; empty means "none" (null). */
export function wholeNumber(field: string, text: string, bounds: { min: number; max: number }): { value: number | null; problem: string | null } {
  const value = text.trim();
  if (!value) return { value: null, problem: null };
  if (!/^\d+$/.test(value)) return { value: null, problem: `${field}: "${value}" is not a whole number.` };
  const n = Number(value);
  if (n < bounds.min || n > bounds.max) return { value: null, problem: `${field}: must be between ${bounds.min} and ${bounds.max}.` };
  return { value: n, problem: null };
}

/** A comma-separated list, trimmed, empties dropped. */
export function listOf(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

import { z } from "zod";

const DURATION = /^(\d{1,5})\s*(h|d|w)$/i;
const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;
const isoDate = z.iso.date();
const isoDateTime = z.iso.datetime({ offset: true });

/**
 * An expiry given on the command line, as milliseconds: a duration from now ("12h", "30d", "8w")
 * or an ISO 8601 date ("2026-01-31": the start of that day, UTC) or time with a zone
 * ("2026-01-31T18:00:00+01:00"). A time without a zone is refused: whose 18:00 would it be?
 * It must lie in the future.
 */
export function parseExpiry(text: string, now: number = Date.now()): number {
  const value = text.trim();
  const duration = DURATION.exec(value);
  let at: number;
  if (duration) {
    const count = Number(duration[1]);
    if (count === 0) throw new Error(`--expires: ${value} is not in the future`);
    at = now + count * UNIT_MS[duration[2]!.toLowerCase() as keyof typeof UNIT_MS];
  } else if (isoDate.safeParse(value).success) {
    at = Date.parse(`${value}T00:00:00Z`);
  } else if (isoDateTime.safeParse(value).success) {
    at = Date.parse(value);
  } else {
    throw new Error(`--expires: "${value}" is neither a duration (12h, 30d, 8w) nor an ISO date (2026-01-31) or time with a zone (2026-01-31T18:00:00Z)`);
  }
  if (!Number.isFinite(at)) throw new Error(`--expires: "${value}" is not a real date`);
  if (at <= now) throw new Error(`--expires: ${new Date(at).toISOString()} is not in the future`);
  return at;
}

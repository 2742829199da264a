/**
 * Wall-clock time in the operator's IANA time zone, through `Intl` only (no date library): the
 * minute of the day that decides which price window applies, and the day and month boundaries
 * at which token quotas reset.
 */

export interface WallTime {
  year: number;
  /** 1–12 */
  month: number;
  /** 1–31 */
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // hourCycle h23: midnight is hour 0 (with hour12: false some engines print "24").
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Throws a clear error unless `timeZone` is an IANA zone this runtime knows (e.g. "Asia/Shanghai", "UTC"). */
export function assertTimeZone(timeZone: string): void {
  try {
    formatterFor(timeZone);
  } catch {
    throw new RangeError(`unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as "UTC" or "Asia/Shanghai"`);
  }
}

export function isTimeZone(timeZone: string): boolean {
  try {
    assertTimeZone(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock reading in `timeZone` at instant `at` (milliseconds since the epoch). */
export function wallTimeAt(at: number, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(at))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** Minutes since local midnight (0–1439) in `timeZone` at instant `at`. */
export function minuteOfDay(at: number, timeZone: string): number {
  const wall = wallTimeAt(at, timeZone);
  return wall.hour * 60 + wall.minute;
}

/**
 * The instant at which `timeZone`'s clocks read `wall`. Two rounds of "subtract the offset in
 * force" settle on the right offset around DST changes; a wall time skipped by a spring-forward
 * gap maps to the instant the clocks jumped past it.
 */
export function instantOf(wall: WallTime, timeZone: string): number {
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  const offsetAt = (at: number) => {
    const w = wallTimeAt(at, timeZone);
    return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(at / 1000) * 1000;
  };
  const first = asUtc - offsetAt(asUtc);
  const second = asUtc - offsetAt(first);
  return second;
}

/** Start of the local day containing `at`. */
export function startOfDay(at: number, timeZone: string): number {
  const w = wallTimeAt(at, timeZone);
  return instantOf({ year: w.year, month: w.month, day: w.day, hour: 0, minute: 0, second: 0 }, timeZone);
}

/** Start of the next local day after the one containing `at`. */
export function startOfNextDay(at: number, timeZone: string): number {
  const w = wallTimeAt(at, timeZone);
  // Date.UTC normalises day 32 into the next month, and so on.
  const next = new Date(Date.UTC(w.year, w.month - 1, w.day + 1));
  return instantOf({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate(), hour: 0, minute: 0, second: 0 }, timeZone);
}

/** Start of the local month containing `at`. */
export function startOfMonth(at: number, timeZone: string): number {
  const w = wallTimeAt(at, timeZone);
  return instantOf({ year: w.year, month: w.month, day: 1, hour: 0, minute: 0, second: 0 }, timeZone);
}

/** Start of the next local month after the one containing `at`. */
export function startOfNextMonth(at: number, timeZone: string): number {
  const w = wallTimeAt(at, timeZone);
  const next = new Date(Date.UTC(w.year, w.month, 1));
  return instantOf({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: 1, hour: 0, minute: 0, second: 0 }, timeZone);
}

/** The local calendar date of `at` as YYYY-MM-DD (what usage charts group by). */
export function localDate(at: number, timeZone: string): string {
  const w = wallTimeAt(at, timeZone);
  return `${w.year}-${String(w.month).padStart(2, "0")}-${String(w.day).padStart(2, "0")}`;
}

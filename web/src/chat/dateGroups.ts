/**
 * The sidebar's groups: pinned conversations first, then the rest by their last activity, as
 * calendar days in the user's time zone (the browser's) — Today, Yesterday, Previous 7 days,
 * Previous 30 days, then one group per month ("March 2025"), newest first. Pure: tested in
 * test/web-date-groups.test.ts.
 */

export interface DateGroup<T> {
  /** Stable across renders (React keys, test ids): "pinned", "today", "yesterday", "week", "month", "2025-03". */
  key: string;
  label: string;
  items: T[];
}

interface Dated {
  updated_at: string;
  pinned_at: string | null;
}

/** Days since 1970-01-01 of the calendar date `date` falls on in `timeZone`. */
function dayNumber(date: Date, timeZone: string): { day: number; year: number; month: number } {
  // en-CA spells dates as YYYY-MM-DD; formatToParts avoids depending on that.
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(date);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const year = get("year");
  const month = get("month");
  return { day: Math.floor(Date.UTC(year, month - 1, get("day")) / 86_400_000), year, month };
}

export function groupByDate<T extends Dated>(items: readonly T[], now: Date = new Date(), timeZone: string = Intl.DateTimeFormat().resolvedOptions().timeZone): DateGroup<T>[] {
  const groups = new Map<string, DateGroup<T>>();
  const add = (key: string, label: string, item: T) => {
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { key, label, items: [] }));
    group.items.push(item);
  };
  const today = dayNumber(now, timeZone).day;
  const monthName = new Intl.DateTimeFormat("en", { timeZone, month: "long", year: "numeric" });
  // Pinned first, then by date: insertion order is the groups' order, as items come newest first.
  for (const item of items) if (item.pinned_at !== null) add("pinned", "Pinned", item);
  for (const item of items) {
    if (item.pinned_at !== null) continue;
    const when = new Date(item.updated_at);
    const { day, year, month } = dayNumber(when, timeZone);
    const age = today - day;
    if (age <= 0) add("today", "Today", item);
    else if (age === 1) add("yesterday", "Yesterday", item);
    else if (age <= 7) add("week", "Previous 7 days", item);
    else if (age <= 30) add("month", "Previous 30 days", item);
    else add(`${year}-${String(month).padStart(2, "0")}`, monthName.format(when), item);
  }
  return [...groups.values()];
}

import assert from "node:assert/strict";
import { test } from "node:test";
import { assertTimeZone, instantOf, localDate, minuteOfDay, startOfDay, startOfMonth, startOfNextDay, startOfNextMonth } from "./zonedTime.ts";

const at = (iso: string) => Date.parse(iso);

test("minuteOfDay reads the wall clock of the zone, midnight as 0", () => {
  assert.equal(minuteOfDay(at("2025-02-10T16:30:00Z"), "UTC"), 16 * 60 + 30);
  assert.equal(minuteOfDay(at("2025-02-10T00:00:00Z"), "UTC"), 0);
  assert.equal(minuteOfDay(at("2025-02-10T23:59:59.999Z"), "UTC"), 23 * 60 + 59);
  // Beijing is UTC+8 all year: DeepSeek's 00:30 Beijing is 16:30 UTC the day before.
  assert.equal(minuteOfDay(at("2025-02-10T16:30:00Z"), "Asia/Shanghai"), 30);
  // Half-hour zones: India is UTC+5:30.
  assert.equal(minuteOfDay(at("2025-02-10T18:30:00Z"), "Asia/Kolkata"), 0);
});

test("day and month boundaries follow the zone, across DST changes", () => {
  const tz = "America/New_York";
  // 2025-03-09 is the spring-forward day (23 hours long) in New York.
  const noon = at("2025-03-09T16:00:00Z");
  assert.equal(new Date(startOfDay(noon, tz)).toISOString(), "2025-03-09T05:00:00.000Z");
  assert.equal(new Date(startOfNextDay(noon, tz)).toISOString(), "2025-03-10T04:00:00.000Z");
  assert.equal(new Date(startOfMonth(noon, tz)).toISOString(), "2025-03-01T05:00:00.000Z");
  assert.equal(new Date(startOfNextMonth(noon, tz)).toISOString(), "2025-04-01T04:00:00.000Z");
  // Year end rolls over.
  assert.equal(new Date(startOfNextMonth(at("2025-12-31T23:00:00Z"), "UTC")).toISOString(), "2026-01-01T00:00:00.000Z");
  assert.equal(new Date(startOfNextDay(at("2025-12-31T23:00:00Z"), "UTC")).toISOString(), "2026-01-01T00:00:00.000Z");
  // 23:30 UTC on the 31st is already 1 January in Beijing.
  assert.equal(localDate(at("2025-12-31T23:30:00Z"), "Asia/Shanghai"), "2026-01-01");
  assert.equal(new Date(instantOf({ year: 2025, month: 11, day: 2, hour: 12, minute: 0, second: 0 }, tz)).toISOString(), "2025-11-02T17:00:00.000Z");
});

test("an unknown time zone is a clear error", () => {
  assert.throws(() => assertTimeZone("Mars/Olympus_Mons"), /unknown time zone "Mars\/Olympus_Mons"/);
  assert.doesNotThrow(() => assertTimeZone("Europe/Berlin"));
});

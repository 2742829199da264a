import assert from "node:assert/strict";
import { test } from "node:test";
import { parseExpiry } from "./expiry.ts";

const NOW = Date.parse("2025-06-01T10:00:00Z");

test("--expires takes durations from now", () => {
  assert.equal(parseExpiry("12h", NOW), NOW + 12 * 3_600_000);
  assert.equal(parseExpiry("30d", NOW), NOW + 30 * 86_400_000);
  assert.equal(parseExpiry("2W", NOW), NOW + 14 * 86_400_000);
});

test("--expires takes ISO dates (start of day, UTC) and times with a zone", () => {
  assert.equal(parseExpiry("2026-01-31", NOW), Date.parse("2026-01-31T00:00:00Z"));
  assert.equal(parseExpiry("2026-01-31T18:00:00+01:00", NOW), Date.parse("2026-01-31T17:00:00Z"));
  assert.equal(parseExpiry("2026-01-31T18:00:00Z", NOW), Date.parse("2026-01-31T18:00:00Z"));
});

test("--expires refuses the past, zone-less times, impossible dates and other words", () => {
  assert.throws(() => parseExpiry("2025-05-31", NOW), /not in the future/);
  assert.throws(() => parseExpiry("0d", NOW), /not in the future/);
  assert.throws(() => parseExpiry("2026-01-31T18:00:00", NOW), /neither a duration/);
  assert.throws(() => parseExpiry("2026-02-30", NOW), /neither a duration|not a real date/);
  assert.throws(() => parseExpiry("30 days", NOW), /neither a duration/);
  assert.throws(() => parseExpiry("5m", NOW), /neither a duration/);
});

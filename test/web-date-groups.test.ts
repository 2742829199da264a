/** The sidebar's date groups (web/src/chat/dateGroups.ts): calendar days in the user's time zone. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { groupByDate } from "../web/src/chat/dateGroups.ts";

const item = (updated_at: string, pinned_at: string | null = null) => ({ updated_at, pinned_at });

test("pinned first, then Today, Yesterday, Previous 7 and 30 days, then months, newest first", () => {
  const now = new Date("2025-03-15T12:00:00Z");
  const items = [
    item("2025-01-02T00:00:00Z", "2025-03-01T00:00:00Z"),
    item("2025-03-15T08:00:00Z"),
    item("2025-03-14T23:00:00Z"),
    item("2025-03-10T12:00:00Z"),
    item("2025-03-08T12:00:00Z"),
    item("2025-03-07T12:00:00Z"),
    item("2025-02-13T12:00:00Z"),
    item("2025-02-12T12:00:00Z"),
    item("2024-12-31T12:00:00Z"),
  ];
  const groups = groupByDate(items, now, "UTC");
  assert.deepEqual(
    groups.map((g) => [g.label, g.items.length]),
    [
      ["Pinned", 1],
      ["Today", 1],
      ["Yesterday", 1],
      ["Previous 7 days", 2],
      ["Previous 30 days", 2],
      ["February 2025", 1],
      ["December 2024", 1],
    ],
  );
  assert.deepEqual(groups.map((g) => g.key), ["pinned", "today", "yesterday", "week", "month", "2025-02", "2024-12"]);
});

test("days are the user's: the same instant is yesterday in Tokyo and today in New York", () => {
  const now = new Date("2025-03-15T02:00:00Z"); // 11:00 on the 15th in Tokyo, 22:00 on the 14th in New York
  const earlier = [item("2025-03-14T16:00:00Z")]; // 01:00 on the 15th in Tokyo, 12:00 on the 14th in New York
  assert.equal(groupByDate(earlier, now, "Asia/Tokyo")[0]!.label, "Today");
  assert.equal(groupByDate(earlier, now, "America/New_York")[0]!.label, "Today");
  const dayBefore = [item("2025-03-14T10:00:00Z")]; // 19:00 on the 14th in Tokyo, 06:00 on the 14th in New York
  assert.equal(groupByDate(dayBefore, now, "Asia/Tokyo")[0]!.label, "Yesterday");
  assert.equal(groupByDate(dayBefore, now, "America/New_York")[0]!.label, "Today");
  // Across a daylight-saving change (9 March 2025 in New York) a day is still a day.
  assert.equal(groupByDate([item("2025-03-09T05:30:00Z")], new Date("2025-03-10T04:30:00Z"), "America/New_York")[0]!.label, "Yesterday");
});

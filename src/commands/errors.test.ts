import assert from "node:assert/strict";
import { test } from "node:test";
import { retryAfter, waitWords } from "./errors.ts";

test("a wait in words is never shorter than the wait, in the unit a person reads", () => {
  assert.deepEqual(
    [0.2, 1, 2, 59, 59.5, 60, 61, 119, 3599, 3600, 3601, 7200].map(waitWords),
    ["1 second", "1 second", "2 seconds", "59 seconds", "1 minute", "1 minute", "2 minutes", "2 minutes", "1 hour", "1 hour", "2 hours", "2 hours"],
  );
});

test("a lockout says how long to wait, from the same figure as its Retry-After", () => {
  for (const [waitMs, words, seconds] of [
    [1, "1 second", 1],
    [1500, "2 seconds", 2],
    [60_000, "1 minute", 60],
    [14 * 60_000 + 1, "15 minutes", 841],
  ] as const) {
    const error = retryAfter(waitMs, "Too many failed sign-in attempts.", "too_many_login_attempts");
    assert.equal(error.message, `Too many failed sign-in attempts. Try again in ${words}.`);
    assert.deepEqual([error.kind, error.code, error.retryAfterS], ["rate_limited", "too_many_login_attempts", seconds]);
  }
});

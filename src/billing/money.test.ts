import assert from "node:assert/strict";
import { test } from "node:test";
import { formatMicros, parseAmount } from "./money.ts";

test("formatMicros shows at least two decimals and every significant micro, without floats", () => {
  assert.equal(formatMicros(0), "0.00");
  assert.equal(formatMicros(110_000_000), "110.00");
  assert.equal(formatMicros(9_070), "0.00907");
  assert.equal(formatMicros(1), "0.000001");
  assert.equal(formatMicros(2_190_000), "2.19");
  assert.equal(formatMicros(-1_500_000), "-1.50");
  // 2^53 - 1 micros: a float division would print 9007199254.740991 with rounding noise.
  assert.equal(formatMicros(Number.MAX_SAFE_INTEGER), "9007199254.740991");
  assert.throws(() => formatMicros(0.5), /not a whole micro amount/);
});

test("parseAmount reads decimals exactly and refuses what is not a plain amount", () => {
  assert.equal(parseAmount("0.14"), 140_000);
  assert.equal(parseAmount("2.19"), 2_190_000);
  assert.equal(parseAmount("12"), 12_000_000);
  assert.equal(parseAmount("0.000001"), 1);
  assert.equal(parseAmount(" 3.5 "), 3_500_000);
  for (const bad of ["", "-1", "1e3", "0.0000001", "1,5", "abc", ".5", "NaN"]) {
    assert.throws(() => parseAmount(bad), /not a decimal amount/, bad);
  }
});

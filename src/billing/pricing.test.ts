import assert from "node:assert/strict";
import { test } from "node:test";
import { formatMicros } from "./money.ts";
import { costMicros, discounted, parseClock, quoteAt, validatePriceSet, type PriceSet, type TokenPrices } from "./pricing.ts";

// DeepSeek-R1's launch prices per million tokens: cache hit $0.14, cache miss $0.55, output $2.19.
const R1: TokenPrices = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };
// DeepSeek's off-peak window for R1: 16:30–00:30 UTC at 75% off.
const R1_WITH_OFF_PEAK: PriceSet = {
  model: "deepseek-reasoner",
  base: R1,
  windows: [{ start: parseClock("16:30"), end: parseClock("00:30"), prices: discounted(R1, 75) }],
};
const at = (iso: string) => Date.parse(iso);

test("R1 launch prices: a million tokens of each kind cost exactly the published price", () => {
  assert.equal(formatMicros(costMicros({ cacheHit: 1_000_000, cacheMiss: 0, output: 0 }, R1)), "0.14");
  assert.equal(formatMicros(costMicros({ cacheHit: 0, cacheMiss: 1_000_000, output: 0 }, R1)), "0.55");
  assert.equal(formatMicros(costMicros({ cacheHit: 0, cacheMiss: 0, output: 1_000_000 }, R1)), "2.19");
});

test("R1 worked example: 10k cache-hit + 2k cache-miss prompt tokens, 3k output tokens (reasoning included)", () => {
  // 10_000 × $0.14/M + 2_000 × $0.55/M + 3_000 × $2.19/M = $0.0014 + $0.0011 + $0.00657 = $0.00907
  const cost = costMicros({ cacheHit: 10_000, cacheMiss: 2_000, output: 3_000 }, R1);
  assert.equal(cost, 9_070);
  assert.equal(formatMicros(cost), "0.00907");
  // What the cache saved: 10_000 tokens × ($0.55 - $0.14)/M = $0.0041.
  assert.equal(costMicros({ cacheHit: 0, cacheMiss: 12_000, output: 3_000 }, R1) - cost, 4_100);
});

test("cost is rounded up once, on the exact total", () => {
  // 1 output token is 2.19 micros → 3; 1 hit + 1 miss + 1 output is 2.88 → 3, not 1 + 1 + 3.
  assert.equal(costMicros({ cacheHit: 0, cacheMiss: 0, output: 1 }, R1), 3);
  assert.equal(costMicros({ cacheHit: 1, cacheMiss: 1, output: 1 }, R1), 3);
  assert.equal(costMicros({ cacheHit: 0, cacheMiss: 0, output: 0 }, R1), 0);
  // 100 output tokens are exactly 219 micros: no rounding at all.
  assert.equal(costMicros({ cacheHit: 0, cacheMiss: 0, output: 100 }, R1), 219);
  // Large counts stay exact (BigInt inside): 10^9 output tokens at $2.19/M is $2190.
  assert.equal(costMicros({ cacheHit: 0, cacheMiss: 0, output: 1_000_000_000 }, R1), 2_190_000_000);
  assert.throws(() => costMicros({ cacheHit: -1, cacheMiss: 0, output: 0 }, R1), /non-negative/);
});

test("75% off R1 is $0.035 / $0.1375 / $0.5475 per million", () => {
  assert.deepEqual(discounted(R1, 75), { inputCacheHit: 35_000, inputCacheMiss: 137_500, output: 547_500 });
  // Half up to a whole micro per million: 3 × 0.5 = 1.5 → 2.
  assert.deepEqual(discounted({ inputCacheHit: 3, inputCacheMiss: 1, output: 0 }, 50), { inputCacheHit: 2, inputCacheMiss: 1, output: 0 });
  assert.throws(() => discounted(R1, 101), /whole percentage/);
});

test("the off-peak window 16:30–00:30 UTC applies on the right side of both boundaries, across midnight", () => {
  const cases: Array<[string, string | null]> = [
    ["2025-02-10T12:00:00.000Z", null],
    ["2025-02-10T16:29:59.999Z", null], // last instant before the window
    ["2025-02-10T16:30:00.000Z", "16:30-00:30"], // first instant inside
    ["2025-02-10T23:59:59.999Z", "16:30-00:30"], // before midnight
    ["2025-02-11T00:00:00.000Z", "16:30-00:30"], // after midnight, still inside
    ["2025-02-11T00:29:59.999Z", "16:30-00:30"], // last instant inside
    ["2025-02-11T00:30:00.000Z", null], // first instant after
  ];
  const example = { cacheHit: 10_000, cacheMiss: 2_000, output: 3_000 };
  for (const [iso, window] of cases) {
    const quote = quoteAt(R1_WITH_OFF_PEAK, at(iso), "UTC");
    assert.equal(quote.window, window, iso);
    // Peak: $0.00907. Off-peak: 10_000 × 0.035 + 2_000 × 0.1375 + 3_000 × 0.5475 = 2267.5 micros → 2268.
    assert.equal(costMicros(example, quote), window ? 2_268 : 9_070, iso);
    assert.equal(quote.source, "deepseek-reasoner");
  }
});

test("windows are read in the configured time zone", () => {
  // DeepSeek announced the same window as 00:30–08:30 Beijing time.
  const beijing: PriceSet = { ...R1_WITH_OFF_PEAK, windows: [{ start: parseClock("00:30"), end: parseClock("08:30"), prices: discounted(R1, 75) }] };
  for (const iso of ["2025-02-10T16:29:59.999Z", "2025-02-10T16:30:00.000Z", "2025-02-11T00:29:59.999Z", "2025-02-11T00:30:00.000Z"]) {
    assert.deepEqual(quoteAt(beijing, at(iso), "Asia/Shanghai").window !== null, quoteAt(R1_WITH_OFF_PEAK, at(iso), "UTC").window !== null, iso);
  }
  // The UTC-defined window read in Beijing time is a different part of the day.
  assert.equal(quoteAt(R1_WITH_OFF_PEAK, at("2025-02-10T16:30:00.000Z"), "Asia/Shanghai").window, null);
});

test("no price set means free; invalid sets are refused with a reason", () => {
  assert.deepEqual(quoteAt(undefined, 0, "UTC"), { inputCacheHit: 0, inputCacheMiss: 0, output: 0, source: null, window: null });
  const window = (start: string, end: string) => ({ start: parseClock(start), end: parseClock(end), prices: R1 });
  assert.throws(() => validatePriceSet({ model: "m", base: R1, windows: [window("16:30", "00:30"), window("00:00", "01:00")] }), /overlap at 00:00/);
  assert.throws(() => validatePriceSet({ model: "m", base: R1, windows: [window("10:00", "10:00")] }), /empty/);
  assert.throws(() => validatePriceSet({ model: "m", base: { ...R1, output: 1.5 }, windows: [] }), /output must be a whole/);
  assert.throws(() => parseClock("24:00"), /HH:MM/);
  assert.throws(() => parseClock("7:30"), /HH:MM/);
  assert.doesNotThrow(() => validatePriceSet({ model: "m", base: R1, windows: [window("16:30", "00:30"), window("00:30", "08:00")] }));
});

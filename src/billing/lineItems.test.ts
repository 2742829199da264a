import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeItems, METERS, priceItems, tokenQuantities, type PricedQuantity } from "./lineItems.ts";
import { costMicros } from "./pricing.ts";

const R1 = { inputCacheHit: 140_000, inputCacheMiss: 550_000, output: 2_190_000 };

test("token items add up to the cost rounded up once, each item its exact amount rounded down or up", () => {
  // 60 hits + 40 misses + 40 output: 8.4 + 22 + 87.6 = 118 micros exactly; rounding each up would give 119.
  const { items, totalMicros } = priceItems(tokenQuantities({ cacheHit: 60, cacheMiss: 40, output: 40 }, R1));
  assert.equal(totalMicros, 118);
  assert.deepEqual(
    items.map((i) => [i.meter, i.quantity, i.unitPriceMicros, i.per, i.amountMicros]),
    [
      [METERS.inputCacheHit, 60, 140_000, 1_000_000, 8],
      [METERS.inputCacheMiss, 40, 550_000, 1_000_000, 22],
      [METERS.output, 40, 2_190_000, 1_000_000, 88],
    ],
  );
  // 164.5 → 165: the half micro goes to the item with the largest remainder.
  const up = priceItems(tokenQuantities({ cacheHit: 0, cacheMiss: 100, output: 50 }, R1));
  assert.equal(up.totalMicros, 165);
  assert.deepEqual(up.items.map((i) => i.amountMicros), [55, 110]);
  assert.deepEqual(priceItems(tokenQuantities({ cacheHit: 0, cacheMiss: 0, output: 0 }, R1)), { items: [], totalMicros: 0 });
});

test("for any usage and prices, the items' total is pricing.ts's cost and every amount is within one micro of exact", () => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
  for (let round = 0; round < 2000; round++) {
    const tokens = { cacheHit: rand(50_000), cacheMiss: rand(50_000), output: rand(20_000) };
    const prices = { inputCacheHit: rand(3_000_000), inputCacheMiss: rand(3_000_000), output: rand(9_000_000) };
    const searches = rand(4);
    const quantities: PricedQuantity[] = [...tokenQuantities(tokens, prices), { meter: "search", quantity: searches, price: { unitPriceMicros: 0, per: 1 } }];
    const { items, totalMicros } = priceItems(quantities);
    assert.equal(totalMicros, costMicros(tokens, prices));
    assert.equal(items.reduce((s, i) => s + i.amountMicros, 0), totalMicros);
    for (const item of items) {
      const exact = (item.quantity * item.unitPriceMicros) / item.per;
      assert.ok(item.amountMicros >= Math.floor(exact) && item.amountMicros <= Math.ceil(exact), `${item.meter}: ${item.amountMicros} vs ${exact}`);
    }
  }
});

test("meters with different units share one rounding: searches per 1, bytes per million, tokens per million", () => {
  const { items, totalMicros } = priceItems([
    { meter: METERS.output, quantity: 1, price: { unitPriceMicros: 2_190_000, per: 1_000_000 } }, // 2.19
    { meter: "search", quantity: 3, price: { unitPriceMicros: 5_000, per: 1 } }, // 15_000
    { meter: "stored_bytes", quantity: 1_500_000, price: { unitPriceMicros: 7, per: 1_000_000 } }, // 10.5
    { meter: "pages", quantity: 1, price: { unitPriceMicros: 10, per: 3 } }, // 3.333…
  ]);
  // 2.19 + 15_000 + 10.5 + 3.333… = 15_016.02… → 15_017
  assert.equal(totalMicros, 15_017);
  assert.deepEqual(items.map((i) => i.amountMicros), [2, 15_000, 11, 4]);
});

test("reported items: repeated meters add up, token meters and bad names or quantities are refused", () => {
  assert.deepEqual(
    mergeItems([
      { meter: "search", quantity: 1 },
      { meter: "stored_bytes", quantity: 10 },
      { meter: "search", quantity: 2 },
    ]),
    [
      { meter: "search", quantity: 3 },
      { meter: "stored_bytes", quantity: 10 },
    ],
  );
  assert.throws(() => mergeItems([{ meter: METERS.output, quantity: 1 }]), /metered from the engine's usage/);
  assert.throws(() => mergeItems([{ meter: "Search!", quantity: 1 }]), /lowercase/);
  assert.throws(() => mergeItems([{ meter: "search", quantity: -1 }]), /whole non-negative/);
  assert.throws(() => mergeItems([{ meter: "search", quantity: 0.5 }]), /whole non-negative/);
  assert.throws(() => priceItems([{ meter: "search", quantity: 1, price: { unitPriceMicros: 1, per: 0 } }]), /'per'/);
});

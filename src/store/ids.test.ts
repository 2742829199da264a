import assert from "node:assert/strict";
import { test } from "node:test";
import { newId } from "./ids.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("newId makes distinct UUIDv7 strings", () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newId()));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, UUID_V7);
});

test("newId carries its timestamp in the leading bits, so later ids sort later", () => {
  const t = Date.UTC(2031, 4, 6, 7, 8, 9, 123);
  const id = newId(t);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), t);
  const sorted = [newId(t + 1), newId(t - 1), newId(t), newId(t + 1000)].sort();
  assert.deepEqual(
    sorted.map((s) => parseInt(s.slice(0, 8) + s.slice(9, 13), 16)),
    [t - 1, t, t + 1, t + 1000],
  );
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "./load.ts";

test("parallel defaults to auto and takes a number or auto from the environment and flags", () => {
  assert.equal(loadConfig({ env: {} }).parallel, "auto");
  assert.equal(loadConfig({ env: { SPUTNIK_PARALLEL: "6" } }).parallel, 6);
  assert.equal(loadConfig({ env: { SPUTNIK_PARALLEL: "auto" } }).parallel, "auto");
  assert.equal(loadConfig({ env: { SPUTNIK_PARALLEL: "auto" }, flags: { parallel: 3 } }).parallel, 3, "flags win over the environment");
});

test("a bad parallel value fails at start, naming the key", () => {
  assert.throws(() => loadConfig({ env: { SPUTNIK_PARALLEL: "many" } }), /Invalid configuration:\n {2}parallel:/);
  assert.throws(() => loadConfig({ env: { SPUTNIK_PARALLEL: "0" } }), /parallel:/);
  assert.throws(() => loadConfig({ flags: { parallel: 65 } }), /parallel:/);
});

test("conversations.staleStreamMs defaults to 30 s and refuses a window shorter than the heartbeats need", () => {
  assert.equal(loadConfig({ env: {} }).conversations.staleStreamMs, 30_000);
  assert.equal(loadConfig({ flags: { conversations: { staleStreamMs: 3_000 } } }).conversations.staleStreamMs, 3_000);
  assert.throws(() => loadConfig({ flags: { conversations: { staleStreamMs: 100 } } }), /conversations\.staleStreamMs:/);
});

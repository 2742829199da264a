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

test("shutdownTimeoutMs defaults to 10 s and is also read under its older name shutdownDrainMs, the newer name winning", () => {
  assert.equal(loadConfig({ env: {} }).shutdownTimeoutMs, 10_000);
  assert.equal(loadConfig({ env: { SPUTNIK_SHUTDOWN_TIMEOUT_MS: "2500" } }).shutdownTimeoutMs, 2_500);
  assert.equal(loadConfig({ env: { SPUTNIK_SHUTDOWN_DRAIN_MS: "3000" } }).shutdownTimeoutMs, 3_000, "the older variable");
  assert.equal(loadConfig({ env: { SPUTNIK_SHUTDOWN_DRAIN_MS: "3000", SPUTNIK_SHUTDOWN_TIMEOUT_MS: "4000" } }).shutdownTimeoutMs, 4_000);
  assert.equal(loadConfig({ flags: { shutdownDrainMs: 0 } as Record<string, unknown> }).shutdownTimeoutMs, 0, "the older key");
  assert.equal(loadConfig({ flags: { shutdownDrainMs: 1, shutdownTimeoutMs: 2 } as Record<string, unknown> }).shutdownTimeoutMs, 2);
  // Precedence between sources is as for any key: a flag under the old name beats the environment.
  assert.equal(loadConfig({ env: { SPUTNIK_SHUTDOWN_TIMEOUT_MS: "4000" }, flags: { shutdownDrainMs: 5 } as Record<string, unknown> }).shutdownTimeoutMs, 5);
  assert.throws(() => loadConfig({ env: { SPUTNIK_SHUTDOWN_DRAIN_MS: "-1" } }), /shutdownTimeoutMs:/);
});

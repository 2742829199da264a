import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { loadConfig } from "../config/load.ts";
import { engineRegistry, engineSpecs } from "./engines.ts";

const config = (flags: Record<string, unknown>) => loadConfig({ env: {}, flags: { dataDir: "/tmp/unused", ...flags } });
const upstream = { id: "up", baseUrl: "http://127.0.0.1:9/v1" };

test("the older keys become engine specs: a local engine unless the config only fronts upstreams", () => {
  assert.deepEqual(engineSpecs(config({})), [{ kind: "local" }]);
  assert.deepEqual(engineSpecs(config({ models: ["demo"] })), [{ kind: "local" }]);
  const fronting = engineSpecs(config({ remoteModels: [upstream] }));
  assert.deepEqual(
    fronting.map((s) => s.kind),
    ["remote"],
  );
  const both = engineSpecs(config({ models: ["demo"], remoteModels: [upstream] }));
  assert.deepEqual(
    both.map((s) => s.kind),
    ["local", "remote"],
    "local first: its models win a name clash",
  );
});

test("engines listed by kind come after local ones, and a remote-only list does not pull a local model", () => {
  const listed = engineSpecs(config({ engines: [{ kind: "remote", models: [upstream] }] }));
  assert.deepEqual(
    listed.map((s) => s.kind),
    ["remote"],
  );
  const mixed = engineSpecs(config({ models: ["demo"], engines: [{ kind: "remote", models: [upstream] }, { kind: "local" }] }));
  assert.deepEqual(
    mixed.map((s) => s.kind),
    ["local", "remote"],
  );
});

test("the registry knows the local and remote kinds and checks each entry with its own schema", async () => {
  const registry = engineRegistry(config({}), pino({ level: "silent" }));
  assert.deepEqual(registry.names(), ["local", "remote"]);
  await assert.rejects(registry.create({ kind: "remote", models: [{ id: "up", baseUrl: "not a url" }] }), /Invalid 'remote' engine in config.engines: models\.0\.baseUrl/);
  await assert.rejects(registry.create({ kind: "fleet" }), /Unknown engine kind 'fleet'/);
  const remote = await registry.create({ kind: "remote", models: [upstream] });
  assert.deepEqual(
    remote.models().map((m) => [m.id, m.engine]),
    [["up", "remote"]],
  );
  assert.equal(remote.capacity("up"), 8, "the upstream's maxConcurrency default");
  await remote.close();
});

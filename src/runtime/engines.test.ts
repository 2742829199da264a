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

test("the registry knows the local, remote and fleet kinds and checks each entry with its own schema", async () => {
  const registry = engineRegistry(config({}), pino({ level: "silent" }));
  assert.deepEqual(registry.names(), ["local", "remote", "fleet"]);
  await assert.rejects(registry.create({ kind: "remote", models: [{ id: "up", baseUrl: "not a url" }] }), /Invalid 'remote' engine in config.engines: models\.0\.baseUrl/);
  await assert.rejects(registry.create({ kind: "fleet" }), /Invalid 'fleet' engine in config.engines: models/);
  await assert.rejects(registry.create({ kind: "swarm" }), /Unknown engine kind 'swarm'/);
  const remote = await registry.create({ kind: "remote", models: [upstream] });
  assert.deepEqual(
    remote.models().map((m) => [m.id, m.engine]),
    [["up", "remote"]],
  );
  assert.equal(remote.capacity("up"), 8, "the upstream's maxConcurrency default");
  await remote.close();
});

test("remoteModels with replicas become a fleet engine; one baseUrl stays a remote engine; both at once is refused", async () => {
  const fleet = { id: "many", replicas: [{ baseUrl: "http://127.0.0.1:9/v1", maxConcurrency: 3 }, { baseUrl: "http://127.0.0.1:10/v1", maxConcurrency: 5 }] };
  const specs = engineSpecs(config({ remoteModels: [upstream, fleet] }));
  assert.deepEqual(
    specs.map((s) => [s.kind, (s as unknown as { models: Array<{ id: string }> }).models.map((m) => m.id)]),
    [
      ["remote", ["up"]],
      ["fleet", ["many"]],
    ],
  );
  assert.throws(() => config({ remoteModels: [{ ...upstream, replicas: fleet.replicas }] }));
  const registry = engineRegistry(config({}), pino({ level: "silent" }));
  const engine = await registry.create(specs[1]!);
  try {
    assert.deepEqual(
      engine.models().map((m) => [m.id, m.engine]),
      [["many", "fleet"]],
    );
    // The first probes (both ports are closed) answer at their own pace: wait for both, so the
    // capacity read below does not depend on which one came back first.
    for (const started = Date.now(); Date.now() - started < 10_000; ) {
      if (engine.stats()[0]!.replicas!.every((r) => r.probe !== "unknown")) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(engine.capacity("many"), 8, "no replica in rotation: the sum of the replicas' maxConcurrency (fail fast, never 0)");
    const [activity] = engine.stats();
    assert.deepEqual(
      activity!.replicas!.map((r) => [r.name, r.breaker, r.maxConcurrency]),
      [
        ["many#0", "closed", 3],
        ["many#1", "closed", 5],
      ],
    );
  } finally {
    await engine.close();
  }
});

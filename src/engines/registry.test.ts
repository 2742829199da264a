import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { EngineRegistry, type EngineKind } from "./registry.ts";
import { emptyUsage, type Engine } from "./types.ts";

function fakeKind(name: string, log: string[]): EngineKind<{ kind: string; id: string }> {
  return {
    kind: name,
    spec: z.object({ kind: z.literal(name), id: z.string().min(1) }),
    async create(spec) {
      log.push(`create ${spec.id}`);
      if (spec.id === "broken") throw new Error("cannot start");
      const engine: Engine = {
        kind: name,
        models: () => [{ id: spec.id, engine: name, ownedBy: "test", reasoning: false }],
        prepare: (request) => ({ model: { id: request.model, engine: name, ownedBy: "test", reasoning: false }, promptTokens: 1, exact: true, room: undefined }),
        async *generate() {
          yield { type: "usage", usage: emptyUsage() };
        },
        capacity: () => 1,
        stats: () => [],
        health: async () => ({ ok: true, detail: "ok" }),
        close: async () => void log.push(`close ${spec.id}`),
      };
      return engine;
    },
  };
}

test("creates engines by kind, validating each entry with its kind's schema", async () => {
  const log: string[] = [];
  const registry = new EngineRegistry().register(fakeKind("a", log)).register(fakeKind("b", log));
  assert.deepEqual(registry.names(), ["a", "b"]);
  const engines = await registry.createAll([
    { kind: "b", id: "m1" },
    { kind: "a", id: "m2" },
  ]);
  assert.deepEqual(
    engines.map((e) => e.models()[0]!.id),
    ["m1", "m2"],
  );
  await assert.rejects(registry.create({ kind: "a" }), /Invalid 'a' engine in config.engines: id/);
  await assert.rejects(registry.create({ kind: "fleet" }), /Unknown engine kind 'fleet'.*known: a, b/);
  assert.throws(() => registry.register(fakeKind("a", log)), /registered twice/);
});

test("a failed start closes the engines already created", async () => {
  const log: string[] = [];
  const registry = new EngineRegistry().register(fakeKind("a", log));
  await assert.rejects(
    registry.createAll([
      { kind: "a", id: "ok" },
      { kind: "a", id: "broken" },
    ]),
    /cannot start/,
  );
  assert.deepEqual(log, ["create ok", "create broken", "close ok"]);
});

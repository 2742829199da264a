import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { postgresUrlOrSkip, redisUrlOrSkip } from "./services.ts";

/** Runs `fn` with the given environment variables set, restoring them after. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// Port 1 on loopback refuses connections at once.
const DEAD = { SPUTNIK_TEST_PG_URL: "postgres://postgres@127.0.0.1:1/test", SPUTNIK_TEST_REDIS_URL: "redis://127.0.0.1:1" };

test("a service that is down skips the test, returning no URL", async (t) => {
  await withEnv({ ...DEAD, SPUTNIK_REQUIRE_SERVICES: "" }, async () => {
    await t.test("postgres down", async (sub: TestContext) => assert.equal(await postgresUrlOrSkip(sub), undefined));
    await t.test("redis down", async (sub: TestContext) => assert.equal(await redisUrlOrSkip(sub), undefined));
  });
});

test("a service that is down fails the test when SPUTNIK_REQUIRE_SERVICES=1", async (t) => {
  await withEnv({ ...DEAD, SPUTNIK_REQUIRE_SERVICES: "1" }, async () => {
    await assert.rejects(postgresUrlOrSkip(t), /PostgreSQL not reachable at postgres:\/\/postgres@127\.0\.0\.1:1\/test .*SPUTNIK_REQUIRE_SERVICES=1/);
    await assert.rejects(redisUrlOrSkip(t), /Redis not reachable at redis:\/\/127\.0\.0\.1:1 .*ECONNREFUSED/);
  });
});

test("the local test services are found when they run", async (t) => {
  const pg = await postgresUrlOrSkip(t);
  const redis = await redisUrlOrSkip(t);
  if (pg) assert.match(pg, /^postgres(ql)?:\/\//);
  if (redis) assert.match(redis, /^rediss?:\/\//);
});

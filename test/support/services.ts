/**
 * Finding the real services tests run against (PostgreSQL, Redis on 127.0.0.1).
 *
 * A test that needs one asks for its URL; when the service is down the test is skipped with a loud
 * line on stderr, or fails when SPUTNIK_REQUIRE_SERVICES=1 (CI, and before claiming "all green"):
 *
 *   const url = await postgresUrlOrSkip(t);
 *   if (!url) return;
 */
import { Socket } from "node:net";
import type { TestContext } from "node:test";
import pg from "pg";

export const DEFAULT_TEST_PG_URL = "postgres://postgres@127.0.0.1:5432/test";
export const DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379";

const PROBE_TIMEOUT_MS = 3000;

export function testPostgresUrl(): string {
  return process.env.SPUTNIK_TEST_PG_URL || DEFAULT_TEST_PG_URL;
}

export function testRedisUrl(): string {
  return process.env.SPUTNIK_TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL;
}

export function servicesRequired(): boolean {
  return process.env.SPUTNIK_REQUIRE_SERVICES === "1";
}

/** The test PostgreSQL URL, or undefined after marking `t` skipped (throws instead when services are required). */
export async function postgresUrlOrSkip(t: TestContext): Promise<string | undefined> {
  const url = testPostgresUrl();
  return (await probeOnce("postgres", url, probePostgres)) ? url : skipOrFail(t, "PostgreSQL", url, "SPUTNIK_TEST_PG_URL");
}

/** The test Redis URL, or undefined after marking `t` skipped (throws instead when services are required). */
export async function redisUrlOrSkip(t: TestContext): Promise<string | undefined> {
  const url = testRedisUrl();
  return (await probeOnce("redis", url, probeRedis)) ? url : skipOrFail(t, "Redis", url, "SPUTNIK_TEST_REDIS_URL");
}

/** Whether PostgreSQL answers at `url`, for suites that decide once in `before`. */
export function postgresReachable(url: string = testPostgresUrl()): Promise<boolean> {
  return probeOnce("postgres", url, probePostgres);
}

/** Whether Redis answers at `url`, for suites that decide once in `before` (see redisUrlOrSkip for single tests). */
export function redisReachable(url: string = testRedisUrl()): Promise<boolean> {
  return probeOnce("redis", url, probeRedis);
}

/** Deletes every key under `prefix` (a test's own random prefix) from the Redis at `url`. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

function skipOrFail(t: TestContext, service: string, url: string, envVar: string): undefined {
  const why = probeFailures.get(url) ?? "unknown error";
  if (servicesRequired()) {
    throw new Error(`${service} not reachable at ${url} (${why}) and SPUTNIK_REQUIRE_SERVICES=1; set ${envVar} or start it`);
  }
  process.stderr.write(`!!! SKIPPED: ${service} not reachable at ${url} (${why}) — these tests did not run: ${t.name}\n`);
  t.skip(`${service} not reachable at ${url}`);
  return undefined;
}

// One probe per service per test process: dozens of tests ask, the answer doesn't change mid-run.
const probes = new Map<string, Promise<boolean>>();
const probeFailures = new Map<string, string>();

function probeOnce(kind: string, url: string, probe: (url: string) => Promise<void>): Promise<boolean> {
  const key = `${kind} ${url}`;
  let p = probes.get(key);
  if (!p) {
    p = probe(url).then(
      () => true,
      (err: unknown) => {
        probeFailures.set(url, errorText(err));
        return false;
      },
    );
    probes.set(key, p);
  }
  return p;
}

async function probePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on("error", () => {}); // a late socket error after end() must not crash the test process
  try {
    await client.connect();
    await client.query("select 1");
  } finally {
    await client.end().catch(() => {});
  }
}

/** Sends a raw PING; a library client would retry forever against a closed port. */
function probeRedis(url: string): Promise<void> {
  const u = new URL(url);
  const host = u.hostname || "127.0.0.1";
  const port = Number(u.port || 6379);
  const auth = u.password ? `AUTH ${u.username ? `${decodeURIComponent(u.username)} ` : ""}${decodeURIComponent(u.password)}\r\n` : "";
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = "";
    const done = (err?: Error) => {
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    socket.on("error", done);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.includes("+PONG\r\n")) done();
      else if (reply.startsWith("-") && reply.includes("\r\n")) done(new Error(reply.trim()));
    });
    socket.connect(port, host, () => socket.write(`${auth}PING\r\n`));
  });
}

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0]);
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

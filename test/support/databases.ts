/**
 * Runs store-backed tests on every database Sputnik supports:
 *
 *   forEachDatabase("stores a user", async (store, t) => {
 *     await createUser(store.db, …);
 *     assert.equal(…);
 *   });
 *
 * registers "stores a user [sqlite]" (a fresh file in a temp dir) and "stores a user [postgres]"
 * (a fresh, randomly named schema in the test database). Both are migrated to the latest version
 * and removed after the test, pass or fail. The PostgreSQL variant is skipped (loudly) when the
 * server is down, unless SPUTNIK_REQUIRE_SERVICES=1.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext, type TestOptions } from "node:test";
import pg from "pg";
import { openDatabase, type Dialect, type OpenDatabaseOptions, type Store } from "../../src/store/database.ts";
import { postgresUrlOrSkip } from "./services.ts";

export const DIALECTS: readonly Dialect[] = ["sqlite", "postgres"];

export interface TestStore extends Store {
  /** What this store was opened with: pass to `openDatabase` to reach the same database again. */
  options: OpenDatabaseOptions;
  /** Opens one more Store on the same database (a second process, say); closed after the test. */
  openAnother(): Promise<Store>;
}

/** Registers `body` once per dialect, as top-level tests or inside a `describe`. */
export function forEachDatabase(
  name: string,
  body: (store: TestStore, t: TestContext) => Promise<void>,
  options: TestOptions = {},
): void {
  for (const dialect of DIALECTS) {
    test(`${name} [${dialect}]`, options, async (t) => {
      const store = await openTestStore(t, dialect);
      if (store) await body(store, t);
    });
  }
}

/**
 * A fresh, migrated database of one dialect for test `t`, deleted when `t` ends; undefined when `t`
 * was skipped because PostgreSQL is down. For tests that need one dialect or several stores.
 */
export async function openTestStore(t: TestContext, dialect: Dialect): Promise<TestStore | undefined> {
  let options: OpenDatabaseOptions;
  let removeDatabase: () => Promise<void>;
  if (dialect === "sqlite") {
    const dataDir = await mkdtemp(join(tmpdir(), "sputnik-test-"));
    options = { dataDir };
    removeDatabase = () => rm(dataDir, { recursive: true, force: true });
  } else {
    const url = await postgresUrlOrSkip(t);
    if (!url) return undefined;
    const schema = `test_${randomBytes(8).toString("hex")}`;
    // dataDir is unused on PostgreSQL; it is set so options stay valid as written.
    options = { url, schema, dataDir: tmpdir() };
    removeDatabase = () => dropSchema(url, schema);
  }

  const opened: Store[] = [];
  t.after(async () => {
    // Every store first (a pool holding connections would block DROP SCHEMA), then the database.
    await Promise.allSettled(opened.map((s) => s.close()));
    await removeDatabase();
  });
  const open = async () => {
    const s = await openDatabase(options);
    opened.push(s);
    return s;
  };
  const store = await open();
  return { ...store, options, openAnother: open };
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

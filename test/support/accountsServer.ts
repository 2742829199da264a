/**
 * A real HTTP server with accounts on a test database, and no engines (for tests of the app API,
 * auth and policies that need no model):
 *
 *   forEachDatabase("…", async (store, t) => {
 *     const server = await startAccountsServer(t, store);
 *     const admin = await server.signUp("root");          // the first account: admin
 *     const res = await admin.get("/api/admin/users");
 *     assert.ok(!server.logText().includes("secret"));
 *   });
 *
 * The log is captured at trace level (pino), so tests can check what reaches it.
 */
import type { TestContext } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { readLocalKey } from "../../src/auth/localMode.ts";
import type { SignupMode } from "../../src/auth/signupMode.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { ModelRouter } from "../../src/engines/router.ts";
import { buildServer } from "../../src/http/server.ts";
import type { TestStore } from "./databases.ts";
import { AppClient } from "./appClient.ts";
import { setSignupModeForTests } from "./signupMode.ts";

/** argon2id at a test cost: same code path, milliseconds instead of ~50 ms per hash. */
export const TEST_PASSWORD_HASHING = { memoryKiB: 64, iterations: 1, parallelism: 1 };
export const TEST_PASSWORD = "correct horse battery staple";

export interface AccountsServer {
  url: string;
  store: TestStore;
  config: Config;
  /** The local single-user key (src/auth/localMode.ts): null when the mode was off at start. */
  localKey: string | null;
  logLines: string[];
  /** Everything logged so far, as one string. */
  logText(): string;
  client(options?: ConstructorParameters<typeof AppClient>[1]): AppClient;
  /** Signs up `username` (password TEST_PASSWORD unless given) and returns the signed-in client. */
  signUp(username: string, extra?: Record<string, unknown>): Promise<AppClient>;
}

export interface AccountsServerSetup {
  /**
   * The sign-up mode to start in. Default `open`: these tests sign many people up; the shipped
   * default (`approval`) is tested where it matters. `null` leaves the database's own setting.
   */
  signupMode?: SignupMode | null;
}

export async function startAccountsServer(
  t: TestContext,
  store: TestStore,
  flags: Partial<Record<keyof Config, unknown>> = {},
  setup: AccountsServerSetup = {},
): Promise<AccountsServer> {
  await setSignupModeForTests(store.db, setup.signupMode === undefined ? "open" : setup.signupMode);
  // A data directory of its own (for the local key): a PostgreSQL test store's is the shared tmpdir.
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-accounts-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const config = loadConfig({
    env: {},
    flags: {
      host: "127.0.0.1",
      port: 0,
      dataDir,
      logLevel: "trace",
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      // These tests sign in many times from one address; the per-IP rate is tested in test/limits-rate.
      limits: { authPerIpPerMinute: 10_000 },
      ...flags,
    },
  });
  const logLines: string[] = [];
  const logger = pino({ level: "trace" }, { write: (line: string) => void logLines.push(line) });
  const app = await buildServer({ router: new ModelRouter([]), logger, bodyLimit: config.bodyLimit, store, config });
  const url = await app.listen({ host: config.host, port: 0 });
  t.after(() => app.close());
  const server: AccountsServer = {
    url,
    store,
    config,
    localKey: await readLocalKey(config.dataDir),
    logLines,
    logText: () => logLines.join("\n"),
    client: (options) => new AppClient(url, options),
    async signUp(username, extra = {}) {
      const client = new AppClient(url);
      const response = await client.post("/api/auth/signup", { username, password: TEST_PASSWORD, ...extra });
      if (response.status !== 201) throw new Error(`sign-up of ${username} failed: ${response.status} ${response.text}`);
      return client;
    },
  };
  return server;
}

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
import pino from "pino";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { ModelRouter } from "../../src/engines/router.ts";
import { buildServer } from "../../src/http/server.ts";
import type { TestStore } from "./databases.ts";
import { AppClient } from "./appClient.ts";

/** argon2id at a test cost: same code path, milliseconds instead of ~50 ms per hash. */
export const TEST_PASSWORD_HASHING = { memoryKiB: 64, iterations: 1, parallelism: 1 };
export const TEST_PASSWORD = "correct horse battery staple";

export interface AccountsServer {
  url: string;
  store: TestStore;
  config: Config;
  logLines: string[];
  /** Everything logged so far, as one string. */
  logText(): string;
  client(options?: ConstructorParameters<typeof AppClient>[1]): AppClient;
  /** Signs up `username` (password TEST_PASSWORD unless given) and returns the signed-in client. */
  signUp(username: string, extra?: Record<string, unknown>): Promise<AppClient>;
}

export async function startAccountsServer(
  t: TestContext,
  store: TestStore,
  flags: Partial<Record<keyof Config, unknown>> = {},
): Promise<AccountsServer> {
  const config = loadConfig({
    env: {},
    flags: {
      host: "127.0.0.1",
      port: 0,
      dataDir: store.options.dataDir,
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

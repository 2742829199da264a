/**
 * Starts a real Sputnik service on an ephemeral loopback port, serving generated test models:
 *
 *   let service: TestService;
 *   before(async () => { service = await startTestService({ models: ["scripted", "scripted-long"] }); });
 *   after(() => service.stop());
 *   const client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: service.localKey! });   // local single-user mode
 *
 * Model ids are the catalog names. `stop()` closes the service and removes its temp data dir.
 * (Register `after` at the top level: an `after` registered inside `before` runs right away.)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readLocalKey } from "../../src/auth/localMode.ts";
import type { SignupMode } from "../../src/auth/signupMode.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { ensureModel } from "../../src/gguf/catalog.ts";
import { startService, type RunningService } from "../../src/runtime/startService.ts";
import { useLocalKey } from "./loopbackClient.ts";
import { setSignupModeForTests } from "./signupMode.ts";

export interface TestServiceOptions {
  /** Catalog model names to serve (generated on demand). */
  models?: string[];
  /** Any other config values. */
  config?: Partial<Record<keyof Config, unknown>>;
  /** Sign-up mode to start in (default `open`, as the tests that sign people up expect); null: the shipped default. */
  signupMode?: SignupMode | null;
  /** startService's own options (e.g. `trustedPageOrigins` for a local web site). */
  start?: Parameters<typeof startService>[1];
}

export interface TestService extends RunningService {
  dataDir: string;
  /**
   * The local single-user key from the data directory (what `sputnik chat` reads): /v1 needs it as
   * `Authorization: Bearer <key>` until the first account exists. Null when local mode was off at start.
   */
  localKey: string | null;
  /** `{ authorization: "Bearer <localKey>" }` (empty without a local key), for raw /v1 requests. */
  localAuth: Record<string, string>;
  stop(): Promise<void>;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-svc-"));
  // Sequential: concurrent first-time generation of the same file is safe, but needlessly doubles work.
  const modelPaths: string[] = [];
  for (const name of options.models ?? ["scripted"]) modelPaths.push(await ensureModel(name));
  const config = loadConfig({
    env: {},
    flags: {
      host: "127.0.0.1",
      port: 0,
      dataDir,
      models: modelPaths,
      threads: 1,
      parallel: 2,
      contextSize: 2048,
      pullDefaultModel: false,
      logLevel: "silent",
      ...options.config,
    },
  });
  const service = await startService(config, options.start);
  await setSignupModeForTests(service.store.db, options.signupMode === undefined ? "open" : options.signupMode);
  const localKey = await readLocalKey(dataDir);
  useLocalKey(service.url, localKey);
  return {
    ...service,
    dataDir,
    localKey,
    localAuth: localKey ? { authorization: `Bearer ${localKey}` } : {},
    stop: async () => {
      useLocalKey(service.url, null);
      await service.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

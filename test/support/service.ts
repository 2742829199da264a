/**
 * Starts a real Sputnik service on an ephemeral loopback port, serving generated test models:
 *
 *   const service = await startTestService(t, { models: ["scripted", "scripted-long"] });
 *   const client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: "unused" });
 *
 * Model ids are the catalog names. The service and its temp data dir are removed when `t` ends.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { ensureModel } from "../../src/gguf/catalog.ts";
import { startService, type RunningService } from "../../src/runtime/startService.ts";

export interface TestServiceOptions {
  /** Catalog model names to serve (generated on demand). */
  models?: string[];
  /** Any other config values. */
  config?: Partial<Record<keyof Config, unknown>>;
}

type HookContext = Pick<TestContext, "after"> | { after(fn: () => Promise<void> | void): void };

export async function startTestService(t: HookContext, options: TestServiceOptions = {}): Promise<RunningService> {
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
  const service = await startService(config);
  t.after(async () => {
    await service.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return service;
}

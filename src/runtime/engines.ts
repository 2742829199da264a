import type { Logger } from "pino";
import { z } from "zod";
import type { Config } from "../config/schema.ts";
import { Redis } from "ioredis";
import { remoteModelSchema } from "../engines/remote/config.ts";
import { fleetModelSchema, isFleetModel } from "../engines/fleet/config.ts";
import { FleetEngine } from "../engines/fleet/fleetEngine.ts";
import { LocalEngine } from "../engines/local/localEngine.ts";
import { EngineRegistry, type EngineSpec } from "../engines/registry.ts";
import { RemoteEngine } from "../engines/remote/remoteEngine.ts";
import type { Engine } from "../engines/types.ts";
import { loadLocalModels } from "./localModels.ts";

/**
 * The engine kinds this build knows, and the engines a config asks for. The only place (with
 * src/engines/) that names kinds: the rest of Sputnik sees `Engine`s through the ModelRouter.
 */
export function engineRegistry(config: Config, logger: Logger): EngineRegistry {
  return new EngineRegistry()
    .register({
      kind: "local",
      // The local models themselves are `config.models` (first-run default when empty).
      spec: z.object({ kind: z.literal("local") }).strict(),
      create: async () => new LocalEngine(await loadLocalModels(config, logger)),
    })
    .register({
      kind: "remote",
      spec: z.object({ kind: z.literal("remote"), models: z.array(remoteModelSchema).min(1).max(1000) }).strict(),
      create: async (spec) => new RemoteEngine(spec.models),
    })
    .register({
      kind: "fleet",
      spec: z.object({ kind: z.literal("fleet"), models: z.array(fleetModelSchema).min(1).max(1000) }).strict(),
      // With redisUrl the routing state (affinity, in-flight leases) is shared by every gateway.
      // Fleet models with a `dns` name start with their first answer (a failed one: their fixed replicas only).
      create: async (spec) => {
        const engine = new FleetEngine(spec.models, { redis: config.redisUrl ? await connectRedis(config.redisUrl) : null, logger });
        await engine.ready();
        return engine;
      },
    });
}

async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined); // reported by the routing state when it matters
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`Cannot reach Redis (redisUrl) for fleet routing: ${(error as Error).message}`);
  }
  return redis;
}

/**
 * `config.engines` plus the older keys: a local engine unless the config only fronts upstreams
 * (then loading, or pulling, a local model would be wrong), and `remoteModels`: those with one
 * `baseUrl` as a remote engine (as before: nothing to route or fail over to), those with
 * `replicas` as a fleet engine. Local engines come first, so their models win a name clash.
 */
export function engineSpecs(config: Config): EngineSpec[] {
  const listed = config.engines;
  const remoteListed = listed.some((e) => e.kind === "remote" || e.kind === "fleet");
  const frontsOnly = config.models.length === 0 && (config.remoteModels.length > 0 || remoteListed);
  const specs: EngineSpec[] = [];
  if (!listed.some((e) => e.kind === "local") && !frontsOnly) specs.push({ kind: "local" });
  specs.push(...listed.filter((e) => e.kind === "local"));
  specs.push(...listed.filter((e) => e.kind !== "local"));
  const single = config.remoteModels.filter((m) => !isFleetModel(m));
  const fleets = config.remoteModels.filter(isFleetModel);
  if (single.length > 0) specs.push({ kind: "remote", models: single });
  if (fleets.length > 0) specs.push({ kind: "fleet", models: fleets });
  return specs;
}

/** Creates the configured engines; a local engine with no models (fronting upstreams only) is dropped. */
export async function createEngines(config: Config, logger: Logger): Promise<Engine[]> {
  const engines = await engineRegistry(config, logger).createAll(engineSpecs(config));
  return engines.filter((e) => e.models().length > 0 || engines.length === 1);
}

import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { modelsDirOf } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { LocalModel, type LocalModelOptions } from "../engines/local/localModel.ts";
import { ensureModel } from "../gguf/catalog.ts";
import { pullModel } from "../models/pull.ts";
import { resolveModelPath } from "../models/registry.ts";
import { verifyGguf } from "../models/verify.ts";

export const DEMO_MODEL_ID = "sputnik-demo";
const DEFAULT_MARKER = "default-model.json";

export interface PlannedModel {
  id: string;
  path: string;
  note?: string;
}

/**
 * Decides which local models to serve and loads them. Configured names resolve inside the models
 * directory only; explicit paths are the operator's choice. Every file is first checked in a child
 * process, because some malformed GGUFs make llama.cpp abort the whole process.
 */
export async function loadLocalModels(config: Config, logger: Logger): Promise<LocalModel[]> {
  // A gateway that fronts upstreams only needs no local model (and must not pull one).
  if (config.models.length === 0 && config.remoteModels.length > 0) return [];
  const planned = config.models.length > 0 ? await configuredModels(config) : await firstRunModels(config, logger);
  // The checks run in child processes, so they can all run at once.
  const verdicts = await Promise.all(planned.map((plan) => verifyGguf(plan.path)));
  planned.forEach((plan, i) => {
    const verdict = verdicts[i]!;
    if (!verdict.ok) throw new Error(`Model ${plan.id} (${plan.path}) cannot be served: ${verdict.reason}`);
  });
  const loaded: LocalModel[] = [];
  try {
    for (const plan of planned) loaded.push(await loadLocalModel(config, logger, plan));
  } catch (error) {
    await Promise.all(loaded.map((m) => m.dispose()));
    throw error;
  }
  return loaded;
}

/**
 * Loads one model with the config's settings: at start, and when an admin loads one while the
 * service runs (src/runtime/modelManager.ts, which passes what the loaded models already take as
 * `memoryInUseBytes`). The file must have been checked (verifyGguf) before.
 */
export async function loadLocalModel(config: Config, logger: Logger, plan: PlannedModel, memoryInUseBytes = 0): Promise<LocalModel> {
  logger.info({ model: plan.id, path: plan.path }, "loading model");
  const model = await LocalModel.load({
    id: plan.id,
    path: plan.path,
    threads: config.threads,
    parallel: config.parallel,
    contextSize: config.contextSize,
    ...(plan.note ? { note: plan.note } : {}),
    ...localEngineOptions(config, plan.id, logger),
    ...(memoryInUseBytes > 0 ? { memoryInUseBytes } : {}),
  });
  logger.info({ model: plan.id, parallel: model.options.parallel, requested: config.parallel, contextSize: model.contextSize }, "model loaded");
  return model;
}

/** The local engine's settings for one model: its operator settings, the disk cache, the memory budget. */
function localEngineOptions(config: Config, id: string, logger: Logger): Partial<LocalModelOptions> {
  const engine = config.localEngine;
  const cache = engine.contextCache;
  return {
    ...(engine.models[id] ? { settings: engine.models[id] } : {}),
    ...(cache.enabled && cache.maxBytes > 0
      ? { contextCache: { dir: path.resolve(cache.dir ?? path.join(config.dataDir, "context-cache")), maxBytes: cache.maxBytes, minTokens: cache.minTokens } }
      : {}),
    ...(engine.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: engine.memoryBudgetBytes } : {}),
    warn: (message) => logger.warn({ model: id }, message),
  };
}

async function configuredModels(config: Config): Promise<PlannedModel[]> {
  const modelsDir = modelsDirOf(config);
  const out: PlannedModel[] = [];
  for (const entry of config.models) {
    if (entry === "demo") {
      out.push(await demoModel(config, "Sputnik's built-in demo model, served because it was asked for."));
    } else if (entry.includes("/") || entry.includes("\\")) {
      const file = path.resolve(entry);
      if (!fs.existsSync(file)) throw new Error(`Model file ${file} does not exist`);
      out.push({ id: path.basename(file).replace(/\.gguf$/i, ""), path: file });
    } else {
      const file = resolveModelPath(modelsDir, entry);
      out.push({ id: path.basename(file).replace(/\.gguf$/i, ""), path: file });
    }
  }
  return out;
}

/**
 * No model configured: serve the default model if it was pulled before, else pull it now; when
 * that fails (offline), serve the demo model and say why, in the log and in /v1/models.
 */
async function firstRunModels(config: Config, logger: Logger): Promise<PlannedModel[]> {
  const modelsDir = modelsDirOf(config);
  const marker = path.join(config.dataDir, DEFAULT_MARKER);
  const known = readMarker(marker);
  if (known?.source === config.defaultModelSource) {
    try {
      const file = resolveModelPath(modelsDir, known.name);
      return [{ id: known.name, path: file }];
    } catch {
      logger.warn({ name: known.name }, "the default model was pulled before but its file is gone; pulling again");
    }
  }
  if (!config.pullDefaultModel) {
    const why = "pulling the default model is switched off";
    logger.warn(`No model configured and ${why}: serving the demo model. Pull a real one with: sputnik pull ${config.defaultModelSource}`);
    return [await demoModel(config, demoNote(config, why))];
  }
  logger.info({ source: config.defaultModelSource }, "no model configured: pulling the default model (about 1.1 GB)");
  try {
    let lastLogged = 0;
    const pulled = await pullModel({
      source: config.defaultModelSource,
      modelsDir,
      hfEndpoint: config.hfEndpoint,
      allowPrivateNetwork: config.allowPrivateNetwork,
      allowHttp: config.allowHttpPulls,
      onProgress: (progress) => {
        const now = Date.now();
        if (now - lastLogged < 2000) return;
        lastLogged = now;
        const pct = progress.totalBytes ? ((progress.downloadedBytes / progress.totalBytes) * 100).toFixed(1) : "?";
        logger.info(`pulling ${config.defaultModelSource}: ${pct}% (${(progress.downloadedBytes / 1e6).toFixed(1)} MB)`);
      },
    });
    fs.writeFileSync(marker, JSON.stringify({ source: config.defaultModelSource, name: pulled.name }));
    return [{ id: pulled.name, path: pulled.path }];
  } catch (error) {
    const why = `pulling ${config.defaultModelSource} failed: ${(error as Error).message}`;
    logger.warn(`${why}. Serving Sputnik's demo model instead; it cannot really answer.`);
    return [await demoModel(config, demoNote(config, why))];
  }
}

function demoNote(config: Config, why: string): string {
  // No restart needed: an admin pulls and loads a model in the app (Admin → Models), and it is in the picker at once.
  return `Demo model: ${why.replace(/[.\s]+$/, "")}. Pull a real model (${config.defaultModelSource}) in the app under Admin → Models, or with \`sputnik pull\`; load it there, then choose it in the model list.`;
}

async function demoModel(config: Config, note: string): Promise<PlannedModel> {
  const file = await ensureModel("demo", path.join(config.dataDir, "builtin"));
  return { id: DEMO_MODEL_ID, path: file, note };
}

function readMarker(file: string): { source: string; name: string } | null {
  try {
    const value = JSON.parse(fs.readFileSync(file, "utf8")) as { source?: unknown; name?: unknown };
    return typeof value.source === "string" && typeof value.name === "string" ? { source: value.source, name: value.name } : null;
  } catch {
    return null;
  }
}

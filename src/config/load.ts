import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { configSchema, type Config } from "./schema.ts";

/**
 * One validated config object, merged from (lowest to highest precedence) defaults, a JSON config
 * file, SPUTNIK_* environment variables and command-line flags. Invalid input fails loudly at start,
 * naming the offending key, instead of surfacing later as odd behaviour.
 */
export function loadConfig(options: {
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: Partial<Record<keyof Config, unknown>>;
} = {}): Config {
  const env = options.env ?? process.env;
  const fileValues = options.file ? readConfigFile(options.file) : {};
  const merged: Record<string, unknown> = { ...renamed(fileValues), ...fromEnv(env), ...renamed(dropUndefined(options.flags ?? {})) };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n");
    throw new Error(`Invalid configuration:\n${issues}`);
  }
  return parsed.data;
}

export function modelsDirOf(config: Config): string {
  return path.resolve(config.modelsDir ?? path.join(config.dataDir, "models"));
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`Cannot read config file ${file}: ${(error as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    return z.record(z.string(), z.unknown()).parse(value);
  } catch (error) {
    throw new Error(`Config file ${file} is not a JSON object: ${(error as Error).message}`);
  }
}

const envKeys: Record<string, { key: keyof Config; kind: "string" | "int" | "bool" | "list" | "json" }> = {
  SPUTNIK_HOST: { key: "host", kind: "string" },
  SPUTNIK_PORT: { key: "port", kind: "int" },
  SPUTNIK_DATA_DIR: { key: "dataDir", kind: "string" },
  SPUTNIK_MODELS_DIR: { key: "modelsDir", kind: "string" },
  SPUTNIK_MODELS: { key: "models", kind: "list" },
  SPUTNIK_DEFAULT_MODEL_SOURCE: { key: "defaultModelSource", kind: "string" },
  SPUTNIK_PULL_DEFAULT_MODEL: { key: "pullDefaultModel", kind: "bool" },
  SPUTNIK_REMOTE_MODELS: { key: "remoteModels", kind: "json" },
  SPUTNIK_ENGINES: { key: "engines", kind: "json" },
  // The older name first, so the newer one wins when both are set.
  SPUTNIK_SHUTDOWN_DRAIN_MS: { key: "shutdownTimeoutMs", kind: "int" },
  SPUTNIK_SHUTDOWN_TIMEOUT_MS: { key: "shutdownTimeoutMs", kind: "int" },
  SPUTNIK_THREADS: { key: "threads", kind: "int" },
  SPUTNIK_PARALLEL: { key: "parallel", kind: "int" },
  SPUTNIK_CONTEXT_SIZE: { key: "contextSize", kind: "int" },
  SPUTNIK_DATABASE_URL: { key: "databaseUrl", kind: "string" },
  SPUTNIK_DATABASE: { key: "database", kind: "json" },
  SPUTNIK_REDIS_URL: { key: "redisUrl", kind: "string" },
  SPUTNIK_LOG_LEVEL: { key: "logLevel", kind: "string" },
  SPUTNIK_HF_ENDPOINT: { key: "hfEndpoint", kind: "string" },
  SPUTNIK_ALLOW_PRIVATE_NETWORK: { key: "allowPrivateNetwork", kind: "bool" },
  SPUTNIK_ALLOW_HTTP_PULLS: { key: "allowHttpPulls", kind: "bool" },
  SPUTNIK_BODY_LIMIT: { key: "bodyLimit", kind: "int" },
  SPUTNIK_CORS_ORIGINS: { key: "corsOrigins", kind: "list" },
  SPUTNIK_TRUST_PROXY: { key: "trustProxy", kind: "string" },
  SPUTNIK_PUBLIC_URL: { key: "publicUrl", kind: "string" },
  SPUTNIK_AUTH: { key: "auth", kind: "json" },
  SPUTNIK_LIMITS: { key: "limits", kind: "json" },
  SPUTNIK_LOCAL_ENGINE: { key: "localEngine", kind: "json" },
  SPUTNIK_METRICS_TOKEN: { key: "metricsToken", kind: "string" },
  SPUTNIK_TRACING: { key: "tracing", kind: "json" },
  SPUTNIK_DASHBOARD_SAMPLE_MS: { key: "dashboardSampleMs", kind: "int" },
  SPUTNIK_MODERATION: { key: "moderation", kind: "json" },
  SPUTNIK_DOCUMENTS: { key: "documents", kind: "json" },
  SPUTNIK_SEARCH: { key: "search", kind: "json" },
};

/**
 * Keys renamed after they were documented, still read under their old name so existing config
 * files keep working; within one source the new name wins, and between sources the usual
 * precedence holds.
 */
const renamedKeys: Record<string, keyof Config> = { shutdownDrainMs: "shutdownTimeoutMs" };

function renamed(values: Record<string, unknown>): Record<string, unknown> {
  const out = { ...values };
  for (const [old, current] of Object.entries(renamedKeys)) {
    if (!Object.hasOwn(out, old)) continue;
    if (!Object.hasOwn(out, current)) out[current] = out[old];
    delete out[old];
  }
  return out;
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, { key, kind }] of Object.entries(envKeys)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    out[key] = convert(name, raw, kind);
  }
  return out;
}

function convert(name: string, raw: string, kind: "string" | "int" | "bool" | "list" | "json"): unknown {
  switch (kind) {
    case "string":
      return raw;
    case "int": {
      // Leave non-numbers as strings so the schema reports them with the key's name.
      return /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    case "bool":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new Error(`${name} must be true or false, got "${raw}"`);
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "json":
      try {
        return JSON.parse(raw);
      } catch {
        throw new Error(`${name} must be JSON`);
      }
  }
}

function dropUndefined(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

import type { Command } from "commander";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";

/** The config as seen by a CLI command: global flags (data dir, config file) plus the command's own. */
export function cliConfig(program: Command, flags: Partial<Record<keyof Config, unknown>> = {}): Config {
  const globals = program.opts<{ config?: string; dataDir?: string; modelsDir?: string }>();
  return loadConfig({
    ...(globals.config ? { file: globals.config } : {}),
    flags: { dataDir: globals.dataDir, modelsDir: globals.modelsDir, ...flags },
  });
}

export function parseIntFlag(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number, got "${value}"`);
    return Number(value);
  };
}

/** A whole number, or "auto" (left to the service to size). */
export function parseCountOrAutoFlag(name: string) {
  return (value: string): number | "auto" => (value === "auto" ? "auto" : parseIntFlag(name)(value));
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

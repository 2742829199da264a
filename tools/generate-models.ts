/**
 * Writes Sputnik's generated GGUF models.
 *
 *   npx tsx tools/generate-models.ts [--out DIR] [names…|all]
 *
 * With no names, writes all of them. Always rewrites (use ensureModel to reuse fresh files).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_MODEL_DIR, MODEL_NAMES, writeModel } from "../src/gguf/catalog.ts";

function usage(): string {
  return `usage: npx tsx tools/generate-models.ts [--out DIR] [names…|all]\nnames: ${MODEL_NAMES.join(", ")}`;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { out: { type: "string" }, help: { type: "boolean", short: "h" } } });
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage()}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage());
    return 0;
  }
  const dir = path.resolve(parsed.values.out ?? DEFAULT_MODEL_DIR);
  const requested = parsed.positionals.length === 0 || parsed.positionals.includes("all") ? [...MODEL_NAMES] : parsed.positionals;
  const unknown = requested.filter((name) => !MODEL_NAMES.includes(name));
  if (unknown.length > 0) {
    console.error(`unknown model(s): ${unknown.join(", ")}\n${usage()}`);
    return 2;
  }
  for (const name of requested) {
    const file = path.join(dir, `${name}.gguf`);
    const started = performance.now();
    const size = await writeModel(name, file);
    const ms = performance.now() - started;
    console.log(`${file}  ${formatSize(size)}  ${ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`}`);
  }
  return 0;
}

function formatSize(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

process.exitCode = await main();

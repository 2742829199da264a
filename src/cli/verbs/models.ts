/** `sputnik models`: what is in the models directory. */
import type { Command } from "commander";
import { listModels, type ModelEntry } from "../../models/registry.ts";
import { formatBytes, formatCount } from "./units.ts";

export function registerModelsCommand(program: Command, deps: { modelsDir(): string }): void {
  program
    .command("models")
    .description("list the GGUF models in the models directory")
    .option("--json", "print JSON instead of a table")
    .action(async (flags: { json?: boolean }) => {
      const dir = deps.modelsDir();
      const models = await listModels(dir);
      if (flags.json) {
        process.stdout.write(JSON.stringify(models, null, 2) + "\n");
        return;
      }
      if (models.length === 0) {
        process.stdout.write(`no models in ${dir} (add one with: sputnik pull hf:user/repo:Q4_K_M)\n`);
        return;
      }
      process.stdout.write(renderTable(models) + "\n");
    });
}

function renderTable(models: ModelEntry[]): string {
  const header = ["NAME", "SIZE", "ARCH", "QUANT", "PARAMS", "CONTEXT"];
  const rows = models.map((m) =>
    m.error !== undefined
      ? [m.name, formatBytes(m.sizeBytes), `error: ${m.error}`]
      : [
          m.name,
          formatBytes(m.sizeBytes),
          m.architecture ?? "?",
          m.quantization ?? "?",
          m.parameterCount ? formatCount(m.parameterCount) : "?",
          m.contextLength ? String(m.contextLength) : "?",
        ],
  );
  // An error row's message runs on unpadded, so a long message does not widen the columns.
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter((r) => r.length === header.length || i < 2).map((r) => r[i].length)),
  );
  return [header, ...rows]
    .map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]) : cell)).join("  "))
    .join("\n");
}

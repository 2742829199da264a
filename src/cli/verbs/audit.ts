import type { Command } from "commander";
import { cliConfig, parseIntFlag } from "../options.ts";
import type { AuditOptions } from "./auditCommand.ts";

/**
 * `sputnik audit`: how served models answer politically sensitive questions (src/audit).
 *
 *   sputnik audit --models a,b [--suite file.json] [--filter country=CN,language=zh] [--samples N --temperature T]
 *                 [--judge model] [--concurrency N] [--url http://host:port --api-key sk-…] [--resume <runId>] [--out dir]
 *   sputnik audit --compare <runA|report.json> <runB|report.json> [--out dir]
 *   sputnik audit --list
 *
 * Runs are stored in the data directory's database (or `databaseUrl`), like the server's own.
 * Without --url the models are served in this process from the data directory's config, through
 * the same pipeline as `sputnik serve` (queue, limits, metering as the audit account): use that on
 * a data directory no running server uses, and --url against a running one.
 */
export function registerAuditCommand(program: Command): void {
  program
    .command("audit")
    .description("audit how models answer politically sensitive questions; compare and list audit runs")
    .option("--models <ids>", "comma-separated model ids to audit")
    .option("--suite <file>", "audit suite file (sputnik-audit-suite/1); default: the bundled suite")
    .option("--filter <filter>", "questions to ask, e.g. country=CN,language=zh (controls are kept for the baseline)")
    .option("--samples <n>", "answers per question and model (needs --temperature > 0 when above 1)", parseIntFlag("--samples"))
    .option("--temperature <t>", "sampling temperature (default 0 with one sample, 0.6 with several)", parseNumberFlag("--temperature"))
    .option("--judge <model>", "also classify every answer with this served model as a judge")
    .option("--concurrency <n>", "questions asked at once (default 4)", parseIntFlag("--concurrency"))
    .option("--max-tokens <n>", "upper bound on each answer's tokens, reasoning included", parseIntFlag("--max-tokens"))
    .option("--url <url>", "ask the models of a running Sputnik (or any OpenAI-compatible server) at this URL")
    .option("--api-key <key>", "API key for --url (default: SPUTNIK_API_KEY, or the local key for a server on this machine)")
    .option("--resume <runId>", "continue an interrupted or cancelled run (asks only what is not stored yet)")
    .option("--out <dir>", "where to write report.html, report.json and report.csv (default: ./audit-<runId>)")
    .option("--compare <runs...>", "compare two runs (ids, or report.json files)")
    .option("--classifier <which>", "with --compare: compare the rules' (default) or the judge's verdicts")
    .option("--list", "list the stored audit runs")
    .action(async (opts: AuditOptions) => {
      const config = cliConfig(program);
      const { runAuditCommand } = await import("./auditCommand.ts");
      process.exitCode = await runAuditCommand(config, opts);
    });
}


function parseNumberFlag(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n)) throw new Error(`${name} must be a number, got "${value}"`);
    return n;
  };
}

/**
 * `sputnik backup <file>`, `sputnik restore <file>`, `sputnik db check`: the database's safety net,
 * on the same data directory / config as `sputnik serve` (src/store/backup.ts does the work).
 *
 *   sputnik --data-dir /srv/sputnik backup /backups/sputnik-$(date +%F).db    # while serving
 *   sputnik --data-dir /srv/sputnik restore /backups/sputnik-2025-03-01.db    # server stopped
 *   sputnik -c sputnik.json db check                                          # exit 1 on a mismatch
 */
import path from "node:path";
import type { Command } from "commander";
import type { Config } from "../../config/schema.ts";
import { backupSqlite, postgresBackupAdvice, restoreSqlite } from "../../store/backup.ts";
import { checkDatabaseSchema, describeSchemaStatus, type SchemaStatus } from "../../store/schemaStatus.ts";
import { cliConfig } from "../options.ts";
import { formatBytes } from "./units.ts";

export function registerBackupCommands(program: Command): void {
  program
    .command("backup <file>")
    .description("copy the SQLite database to <file>, consistently, while Sputnik runs (PostgreSQL: use pg_dump)")
    .option("--force", "replace <file> if it exists")
    .action(async (file: string, flags: { force?: boolean }) => {
      const config = cliConfig(program);
      refuseOnPostgres(config, "backup");
      const result = await backupSqlite({ dataDir: config.dataDir, target: file, overwrite: flags.force, busyTimeoutMs: config.database.busyTimeoutMs });
      process.stdout.write(
        `backed up ${result.source} to ${result.file}: ${formatBytes(result.bytes)}, ${versionText(result.status)}, integrity ok\n` +
          `snapshot at ${new Date(result.snapshotAt).toISOString()} (everything committed by then), took ${result.durationMs} ms\n` +
          `not included: ${notIncluded(config)}\n`,
      );
    });

  program
    .command("restore <file>")
    .description("replace the SQLite database with a backup (refused while a server uses it; the old one is kept)")
    .option("--force", "skip the check that no server uses the database (only for a database too damaged to open)")
    .action(async (file: string, flags: { force?: boolean }) => {
      const config = cliConfig(program);
      refuseOnPostgres(config, "restore");
      const result = await restoreSqlite({ dataDir: config.dataDir, source: file, force: flags.force });
      const { status } = result.backup;
      process.stdout.write(
        `restored ${result.backup.file} into ${result.database}: ${formatBytes(result.backup.bytes)}, ${versionText(status)}, integrity ok\n` +
          (result.kept ? `the replaced database is kept as ${result.kept}\n` : "") +
          (status.pending.length > 0 ? `the next \`sputnik serve\` brings it to ${status.latest} (pending: ${status.pending.join(", ")})\n` : ""),
      );
    });

  const db = program.command("db").description("database maintenance");
  db.command("check")
    .description("say whether the database's schema version matches this build (exit 1 when it does not)")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const config = cliConfig(program);
      const report = await checkDatabaseSchema({
        url: config.databaseUrl,
        dataDir: config.dataDir,
        schema: config.database.schema,
        connectTimeoutMs: config.database.connectTimeoutMs,
        applicationName: config.database.applicationName,
      });
      const { status } = report;
      if (flags.json) {
        process.stdout.write(JSON.stringify({ dialect: report.dialect, database: report.where, ...status }, null, 2) + "\n");
      } else {
        process.stdout.write(`${report.dialect} ${report.where}: ${describeSchemaStatus(status)}\n`);
      }
      // Not thrown: the report above is the message; scripts and deploy hooks read the exit code.
      if (!status.ok) process.exitCode = 1;
    });
}

function refuseOnPostgres(config: Config, verb: "backup" | "restore"): void {
  const url = config.databaseUrl?.trim();
  if (url) throw new Error(`\`sputnik ${verb}\` works on SQLite only; ${postgresBackupAdvice(url, config.database.schema)}`);
}

function versionText(status: SchemaStatus): string {
  if (status.ok) return `schema ${status.current} (this build's)`;
  if (status.pending.length > 0) return `schema ${status.current} (older than this build's ${status.latest})`;
  return `schema ${status.current}`;
}

function notIncluded(config: Config): string {
  const cache = config.localEngine.contextCache.dir ?? path.join(config.dataDir, "context-cache");
  return `the disk context cache (${path.resolve(cache)}: a cache, refilled as requests come) and the models (pull them again)`;
}

import type { Command } from "commander";
import { cliConfig, collect, parseCountOrAutoFlag, parseIntFlag } from "../options.ts";

/** Past the drain, how long closing (settling cut answers, the database) may take before the process exits anyway. */
const FORCED_EXIT_AFTER_MS = 30_000;

export function registerServeCommand(program: Command): void {
  program
    .command("serve", { isDefault: true })
    .description("run the Sputnik service (API + web app)")
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .option("-p, --port <port>", "port (default 8080)", parseIntFlag("--port"))
    .option("-m, --model <name|path|demo>", "local model to serve (repeatable)", collect)
    .option("-t, --threads <n>", "llama.cpp threads", parseIntFlag("--threads"))
    .option("--parallel <n|auto>", "parallel sequences per model (auto: sized from free memory)", parseCountOrAutoFlag("--parallel"))
    .option("--context-size <n>", "context size per sequence (tokens)", parseIntFlag("--context-size"))
    .option("--no-pull", "do not pull the default model on first run")
    .action(async (opts: { host?: string; port?: number; model?: string[]; threads?: number; parallel?: number | "auto"; contextSize?: number; pull: boolean }) => {
      const config = cliConfig(program, {
        host: opts.host,
        port: opts.port,
        models: opts.model,
        threads: opts.threads,
        parallel: opts.parallel,
        contextSize: opts.contextSize,
        ...(opts.pull === false ? { pullDefaultModel: false } : {}),
      });
      // Loaded here, not at the top: every other `sputnik` command would pay for the whole server's imports.
      const { startService } = await import("../../runtime/startService.ts");
      const { localModeHint } = await import("../../auth/localMode.ts");
      const service = await startService(config);
      // First run on a laptop: where to create the admin, and how to use /v1 until then.
      const hint = await localModeHint(service.store.db, config, service.url);
      if (hint) service.logger.info(hint);
      // Graceful drain (src/runtime/startService.ts): /readyz 503 and new requests refused at once,
      // running answers get shutdownTimeoutMs, then exit 0. A second signal stops at once (Node's default).
      const stop = async (signal: string) => {
        service.logger.info({ shutdownTimeoutMs: config.shutdownTimeoutMs }, `received ${signal}, draining`);
        // Should the close itself hang (a database that never answers), the orchestrator still gets an exit.
        setTimeout(() => {
          service.logger.error("the shutdown did not finish in time; exiting");
          process.exit(1);
        }, config.shutdownTimeoutMs + FORCED_EXIT_AFTER_MS).unref();
        try {
          await service.close();
        } catch (err) {
          service.logger.error({ err }, "the shutdown failed");
          process.exit(1);
        }
        service.logger.info("stopped");
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
    });
}

import type { Command } from "commander";
import { localModeHint } from "../../auth/localMode.ts";
import { startService } from "../../runtime/startService.ts";
import { cliConfig, collect, parseCountOrAutoFlag, parseIntFlag } from "../options.ts";

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
      const service = await startService(config);
      // First run on a laptop: where to create the admin, and how to use /v1 until then.
      const hint = await localModeHint(service.store.db, config, service.url);
      if (hint) service.logger.info(hint);
      const stop = async (signal: string) => {
        service.logger.info(`received ${signal}, shutting down`);
        await service.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
    });
}

/** `sputnik pull <source>`: download a model into the models directory. */
import type { Command } from "commander";
import { ModelError } from "../../models/errors.ts";
import { createProgressReporter } from "./pullProgress.ts";
import { formatBytes, formatCount } from "./units.ts";

interface PullFlags {
  name?: string;
  hfEndpoint?: string;
  allowPrivateNetwork?: boolean;
  allowHttp?: boolean;
}

export function registerPullCommand(program: Command, deps: { modelsDir(): string }): void {
  program
    .command("pull")
    .description("download a GGUF model into the models directory (interrupted downloads resume)")
    .argument("<source>", "hf:user/repo:QUANT, hf:user/repo/path/file.gguf or an https:// URL")
    .option("--name <name>", "store the model under this name (default: the file name without .gguf)")
    .option("--hf-endpoint <url>", "Hugging Face endpoint (default: $SPUTNIK_HF_ENDPOINT or https://huggingface.co)")
    .option("--allow-private-network", "allow downloads from loopback, private and link-local addresses")
    .option("--allow-http", "allow plain http:// URLs")
    .addHelpText("after", "\nA Hugging Face token is read from $HF_TOKEN.\n")
    .action(async (source: string, flags: PullFlags) => {
      process.exitCode = await runPull(source, flags, deps.modelsDir());
    });
}

async function runPull(source: string, flags: PullFlags, modelsDir: string): Promise<number> {
  const controller = new AbortController();
  // Ctrl-C stops the transfer but keeps the .partial file, so running the command again resumes.
  const onSigint = () => controller.abort();
  process.once("SIGINT", onSigint);
  const progress = createProgressReporter();
  try {
    const { pullModel } = await import("../../models/pull.ts");
    const result = await pullModel({
      source,
      modelsDir,
      name: flags.name,
      hfEndpoint: flags.hfEndpoint,
      allowPrivateNetwork: flags.allowPrivateNetwork,
      allowHttp: flags.allowHttp,
      signal: controller.signal,
      onProgress: (p) => progress.update(p),
      onVerify: () => {
        progress.stop();
        process.stderr.write("verifying that llama.cpp can load the file…\n");
      },
    });
    progress.stop();
    if (result.alreadyPresent) {
      process.stdout.write(`${result.name} is already in ${modelsDir} (${formatBytes(result.bytes)}); nothing to do.\n`);
      return 0;
    }
    const info = result.info;
    const details = info
      ? [info.architecture, info.quantization, info.parameterCount && `${formatCount(info.parameterCount)} params`, info.contextLength && `ctx ${info.contextLength}`]
          .filter(Boolean)
          .join(", ")
      : "";
    process.stdout.write(
      `pulled ${result.name} (${formatBytes(result.bytes)}${details ? `, ${details}` : ""})${result.resumed ? ", resumed" : ""}\n  ${result.path}\n`,
    );
    return 0;
  } catch (error) {
    progress.stop();
    if (controller.signal.aborted) {
      process.stderr.write("interrupted: the partial download is kept; run the same command again to resume.\n");
      return 130;
    }
    if (error instanceof ModelError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

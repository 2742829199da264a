import readline from "node:readline";
import type { Command } from "commander";
import pino from "pino";
import { isLoopbackHost, readLocalKey } from "../../auth/localMode.ts";
import { remoteModelSchema } from "../../engines/remote/config.ts";
import { LocalEngine } from "../../engines/local/localEngine.ts";
import { RemoteEngine } from "../../engines/remote/remoteEngine.ts";
import type { ChatMessage, Engine } from "../../engines/types.ts";
import { loadLocalModels } from "../../runtime/localModels.ts";
import { cliConfig, parseIntFlag } from "../options.ts";

const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

/**
 * `sputnik chat`: a terminal chat like `ollama run`. Runs the model in-process, or talks to a
 * running Sputnik (or any OpenAI-compatible server) with --url. Ctrl-C stops the answer being
 * generated, not the program; Ctrl-D or /bye leaves.
 */
export function registerChatCommand(program: Command): void {
  program
    .command("chat")
    .description("chat with a model in the terminal")
    .option("-m, --model <name|path|demo>", "model to chat with")
    .option("--url <url>", "talk to a running server instead (e.g. http://127.0.0.1:8080/v1)")
    .option("--api-key <key>", "API key for --url (or SPUTNIK_API_KEY; for a Sputnik on this machine, the data directory's local key by default)")
    .option("-s, --system <text>", "system prompt")
    .option("-t, --threads <n>", "llama.cpp threads", parseIntFlag("--threads"))
    .option("--max-tokens <n>", "cap on generated tokens per answer", parseIntFlag("--max-tokens"))
    .action(async (opts: { model?: string; url?: string; apiKey?: string; system?: string; threads?: number; maxTokens?: number }) => {
      const { engine, model } = await openEngine(program, opts);
      try {
        await chatLoop(engine, model, opts.system, opts.maxTokens);
      } finally {
        await engine.close();
      }
    });
}

async function openEngine(
  program: Command,
  opts: { model?: string; url?: string; apiKey?: string; threads?: number },
): Promise<{ engine: Engine; model: string }> {
  if (opts.url) {
    const baseUrl = opts.url.replace(/\/+$/, "");
    const apiKey = opts.apiKey ?? process.env.SPUTNIK_API_KEY ?? (await localKeyFor(baseUrl, cliConfig(program).dataDir));
    const model = opts.model ?? (await firstRemoteModel(baseUrl, apiKey));
    const engine = new RemoteEngine([remoteModelSchema.parse({ id: model, baseUrl, ...(apiKey ? { apiKey } : {}) })]);
    return { engine, model };
  }
  const config = cliConfig(program, {
    ...(opts.model ? { models: [opts.model] } : {}),
    threads: opts.threads,
    parallel: 1,
    logLevel: "warn",
  });
  const loaded = await loadLocalModels(config, pino({ level: "warn" }));
  const engine = new LocalEngine(loaded);
  const first = engine.models()[0];
  if (!first) throw new Error("no model to chat with");
  if (first.note) console.log(`${DIM}${first.note}${RESET}`);
  return { engine, model: first.id };
}

/**
 * A Sputnik on this machine in local single-user mode wants its data directory's local key
 * (src/auth/localMode.ts). Only ever sent to a loopback URL: the key must not leave the machine.
 */
async function localKeyFor(baseUrl: string, dataDir: string): Promise<string | undefined> {
  let host: string;
  try {
    host = new URL(baseUrl).hostname;
  } catch {
    return undefined;
  }
  if (!isLoopbackHost(host)) return undefined;
  return (await readLocalKey(dataDir)) ?? undefined;
}

async function firstRemoteModel(baseUrl: string, apiKey?: string): Promise<string> {
  const response = await fetch(`${baseUrl}/models`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
  if (!response.ok) throw new Error(`${baseUrl}/models answered ${response.status}`);
  const body = (await response.json()) as { data?: Array<{ id: string }> };
  const id = body.data?.[0]?.id;
  if (!id) throw new Error(`${baseUrl} serves no models`);
  return id;
}

async function chatLoop(engine: Engine, model: string, system: string | undefined, maxTokens: number | undefined): Promise<void> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const history: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
  let generation: AbortController | null = null;
  let interruptedOnce = false;
  rl.on("SIGINT", () => {
    if (generation) {
      generation.abort();
      return;
    }
    if (interruptedOnce) {
      rl.close();
      return;
    }
    interruptedOnce = true;
    process.stdout.write("\n(Ctrl-C again, Ctrl-D or /bye to leave)\n>>> ");
  });
  // Without a TTY, readline does not see Ctrl-C: handle the signal for the running answer too.
  const onSignal = () => (generation ? generation.abort() : rl.close());
  process.on("SIGINT", onSignal);

  console.log(`${DIM}Chatting with ${model}. /bye to leave, Ctrl-C stops an answer.${RESET}`);
  try {
    for await (const line of promptLines(rl)) {
      interruptedOnce = false;
      const text = line.trim();
      if (!text) continue;
      if (text === "/bye" || text === "/exit") break;
      history.push({ role: "user", content: text });
      generation = new AbortController();
      const answer = await streamAnswer(engine, { model, messages: history, signal: generation.signal, ...(maxTokens ? { maxTokens } : {}) });
      generation = null;
      history.push({ role: "assistant", content: answer });
    }
  } finally {
    process.off("SIGINT", onSignal);
    rl.close();
  }
}

async function* promptLines(rl: readline.Interface): AsyncGenerator<string> {
  // Input can end while an answer is streaming (piped stdin): then there is nothing left to ask.
  let closed = false;
  rl.once("close", () => (closed = true));
  while (!closed) {
    const line = await new Promise<string | null>((resolve) => {
      const onClose = () => resolve(null);
      rl.once("close", onClose);
      rl.question(">>> ", (answer) => {
        rl.off("close", onClose);
        resolve(answer);
      });
    });
    if (line === null) return;
    yield line;
  }
}

async function streamAnswer(engine: Engine, request: Parameters<Engine["generate"]>[0]): Promise<string> {
  let answer = "";
  let inReasoning = false;
  try {
    for await (const event of engine.generate(request)) {
      if (event.type === "reasoning") {
        if (!inReasoning) process.stdout.write(`${DIM}Thinking…\n`);
        inReasoning = true;
        process.stdout.write(event.text);
      } else if (event.type === "content") {
        if (inReasoning) process.stdout.write(`${RESET}\n\n`);
        inReasoning = false;
        answer += event.text;
        process.stdout.write(event.text);
      } else if (event.type === "done" && event.finishReason === "abort") {
        process.stdout.write(`${RESET}\n[stopped]`);
      }
    }
  } catch (error) {
    process.stdout.write(`${RESET}\nerror: ${(error as Error).message}`);
  }
  process.stdout.write(`${RESET}\n`);
  return answer;
}

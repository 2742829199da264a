import readline from "node:readline";
import type { Command } from "commander";
import type { ChatMessage, Engine } from "../../engines/types.ts";
import { cliConfig, parseIntFlag } from "../options.ts";
import { exitQuietlyOnClosedPipe, styleFor, type Style } from "../terminal.ts";
import { CHAT_HELP, parseChatCommand } from "./chatCommands.ts";
import { chooseKey, pickModel, servedModels } from "./chatServer.ts";

/**
 * `sputnik chat`: a terminal chat like `ollama run`. Runs the model in-process, or talks to a
 * running Sputnik (or any OpenAI-compatible server) with --url. Ctrl-C stops the answer being
 * generated, not the program; Ctrl-D or /bye leaves. Colour only on a terminal (and never with
 * NO_COLOR); piping into `head` ends it quietly (src/cli/terminal.ts).
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
      exitQuietlyOnClosedPipe();
      const style = styleFor(process.stdout);
      const { engine, model } = await openEngine(program, opts, style);
      try {
        await chatLoop(engine, model, opts.system, opts.maxTokens, style);
      } finally {
        await engine.close();
      }
    });
}

async function openEngine(
  program: Command,
  opts: { model?: string; url?: string; apiKey?: string; threads?: number },
  style: Style,
): Promise<{ engine: Engine; model: string }> {
  if (opts.url) {
    const baseUrl = opts.url.replace(/\/+$/, "");
    const dataDir = cliConfig(program).dataDir;
    const key = await chooseKey(baseUrl, dataDir, opts.apiKey);
    // Before the first prompt: a wrong key or model name is told now, with what to do.
    const model = pickModel(baseUrl, await servedModels(baseUrl, key, dataDir), opts.model);
    // Engines load only when chat runs (not for `sputnik --help` or the other commands).
    const { RemoteEngine } = await import("../../engines/remote/remoteEngine.ts");
    const { remoteModelSchema } = await import("../../engines/remote/config.ts");
    const engine = new RemoteEngine([remoteModelSchema.parse({ id: model, baseUrl, ...(key.key ? { apiKey: key.key } : {}) })]);
    return { engine, model };
  }
  const config = cliConfig(program, {
    ...(opts.model ? { models: [opts.model] } : {}),
    threads: opts.threads,
    parallel: 1,
    logLevel: "warn",
  });
  const [{ loadLocalModels }, { LocalEngine }, { default: pino }] = await Promise.all([
    import("../../runtime/localModels.ts"),
    import("../../engines/local/localEngine.ts"),
    import("pino"),
  ]);
  const loaded = await loadLocalModels(config, pino({ level: "warn" }));
  const engine = new LocalEngine(loaded);
  const first = engine.models()[0];
  if (!first) throw new Error("no model to chat with");
  if (first.note) console.log(style.dim(first.note));
  return { engine, model: first.id };
}

async function chatLoop(engine: Engine, model: string, system: string | undefined, maxTokens: number | undefined, style: Style): Promise<void> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const start: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
  const history: ChatMessage[] = [...start];
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

  console.log(style.dim(`Chatting with ${model}. /help for commands, /bye to leave, Ctrl-C stops an answer.`));
  try {
    for await (const line of promptLines(rl)) {
      interruptedOnce = false;
      const text = line.trim();
      if (!text) continue;
      const command = parseChatCommand(text);
      if (command?.kind === "leave") break;
      if (command?.kind === "help") {
        console.log(CHAT_HELP);
        continue;
      }
      if (command?.kind === "new") {
        history.splice(0, history.length, ...start);
        console.log(style.dim("New conversation."));
        continue;
      }
      if (command?.kind === "unknown") {
        console.log(`Unknown command ${command.name}. Type /help for the list.`);
        continue;
      }
      history.push({ role: "user", content: text });
      generation = new AbortController();
      const answer = await streamAnswer(engine, { model, messages: history, signal: generation.signal, ...(maxTokens ? { maxTokens } : {}) }, style);
      generation = null;
      history.push({ role: "assistant", content: answer });
    }
  } finally {
    process.off("SIGINT", onSignal);
    rl.close();
  }
}

/**
 * Prompts and yields each line typed. Lines are queued as readline reads them: piped input arrives
 * all at once, and a line read while an answer streams is the next message, not lost.
 */
async function* promptLines(rl: readline.Interface): AsyncGenerator<string> {
  const queued: string[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  rl.on("line", (line) => {
    queued.push(line);
    wake?.();
  });
  rl.once("close", () => {
    closed = true;
    wake?.();
  });
  rl.setPrompt(">>> ");
  for (;;) {
    if (!closed) rl.prompt();
    while (queued.length === 0 && !closed) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    const line = queued.shift();
    if (line === undefined) return;
    yield line;
  }
}

async function streamAnswer(engine: Engine, request: Parameters<Engine["generate"]>[0], style: Style): Promise<string> {
  let answer = "";
  let inReasoning = false;
  try {
    for await (const event of engine.generate(request)) {
      if (event.type === "reasoning") {
        if (!inReasoning) process.stdout.write(`${style.dimStart}Thinking…\n`);
        inReasoning = true;
        process.stdout.write(event.text);
      } else if (event.type === "content") {
        if (inReasoning) process.stdout.write(`${style.reset}\n\n`);
        inReasoning = false;
        answer += event.text;
        process.stdout.write(event.text);
      } else if (event.type === "done" && event.finishReason === "abort") {
        process.stdout.write(`${style.reset}\n[stopped]`);
      }
    }
  } catch (error) {
    process.stdout.write(`${style.reset}\nerror: ${(error as Error).message}`);
  }
  process.stdout.write(`${style.reset}\n`);
  return answer;
}

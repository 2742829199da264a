/**
 * `npm run bench:gateway`: the gateway's own cost before the engine evaluates anything — the
 * serving pipeline's stages resolve → authorize → admit → prepare (tokenize) → reserve — for a
 * long prompt, measured in-process with the real parts (the benchmark model's 151,936-token
 * vocabulary in llama.cpp, real limits, a real Meter and request log on SQLite). No prompt is
 * evaluated: each started completion is abandoned (settled as failed), so the figure is the
 * gateway alone, not llama.cpp's prompt ingest.
 *
 *   npm run bench:gateway -- [--tokens 16000] [--runs 7]
 *
 * Also printed: what one tokenization of that prompt costs, i.e. what each of the two extra
 * tokenizations per request that the pipeline removed used to add. Figures are printed, never
 * asserted: the machine may be shared (the load average is printed with them).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Meter } from "../src/billing/meter.ts";
import { LocalEngine } from "../src/engines/local/localEngine.ts";
import { LocalModel } from "../src/engines/local/localModel.ts";
import { ModelRouter } from "../src/engines/router.ts";
import { ServiceError } from "../src/errors.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { limitsConfigSchema } from "../src/limits/config.ts";
import { identityOf } from "../src/limits/identity.ts";
import { Limits } from "../src/limits/limits.ts";
import { MemoryBucketStore } from "../src/limits/tokenBucket.ts";
import { Serving } from "../src/serving/completion.ts";
import { openDatabase } from "../src/store/database.ts";
import { LOCAL } from "../src/auth/actor.ts";
import { textOfTokens } from "./text.ts";

const { values: args } = parseArgs({ options: { tokens: { type: "string", default: "16000" }, runs: { type: "string", default: "7" } } });
const tokens = Number(args.tokens);
const runs = Number(args.runs);
if (!Number.isInteger(tokens) || tokens < 16 || !Number.isInteger(runs) || runs < 1) throw new Error("--tokens and --runs must be positive whole numbers");
const loadAverage = () => os.loadavg().map((v) => v.toFixed(2)).join(" ");
console.log(`# gateway bench: ${tokens}-token prompt, ${runs} runs, ${os.cpus().length} CPUs, load average ${loadAverage()}`);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-gateway-"));
const model = await LocalModel.load({ id: "bench", path: await ensureModel("bench"), threads: 1, parallel: 1, contextSize: tokens + 1024 });
const store = await openDatabase({ dataDir });
try {
  const router = new ModelRouter([new LocalEngine([model])]);
  const limits = new Limits({ config: limitsConfigSchema.parse({}), store: new MemoryBucketStore(), capacityOf: (m) => router.capacity(m) });
  const meter = new Meter(store.db, { timeZone: "UTC", defaultPlanId: "free", leaseMs: 60_000, defaultMaxOutputTokens: 1000 });
  const serving = new Serving({
    router,
    limits,
    meter,
    db: store.db,
    describeError: (e) => ({ status: e instanceof ServiceError ? 400 : 500, code: null }),
  });
  const count = (text: string) => model.model.tokenize(text).length;
  const prompt = textOfTokens(7, tokens, count);
  const messages = [{ role: "user" as const, content: prompt }];
  const promptTokens = model.promptTokens({ messages }).length;

  const gateway: number[] = [];
  const tokenize: number[] = [];
  for (let run = 0; run < runs; run++) {
    const t0 = performance.now();
    const completion = await serving.start({ actor: LOCAL, identity: identityOf(LOCAL, "127.0.0.1"), clientIp: "127.0.0.1", generation: { model: "bench", messages }, stream: false });
    gateway.push(performance.now() - t0);
    await completion.abandon();
    const t1 = performance.now();
    model.promptTokens({ messages });
    tokenize.push(performance.now() - t1);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const g = median(gateway);
  const t = median(tokenize);
  console.log(`prompt: ${promptTokens} tokens (${Buffer.byteLength(prompt)} bytes)`);
  console.log(`gateway before generation (resolve → authorize → admit → prepare → reserve), median: ${g.toFixed(1)} ms`);
  console.log(`one tokenization of the prompt, median: ${t.toFixed(1)} ms (of which the pipeline does 1 per request; before it, 3)`);
  console.log(`estimated gateway time with 3 tokenizations: ${(g + 2 * t).toFixed(1)} ms → saved ${(2 * t).toFixed(1)} ms per request (${((2 * t) / (g + 2 * t) * 100).toFixed(0)}%)`);
  console.log(`load average at the end: ${loadAverage()}`);
} finally {
  await model.dispose();
  await store.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

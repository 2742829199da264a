/**
 * Child process of the bench: node-llama-cpp driven directly (no HTTP, no chat layer), one
 * sequence, greedy decoding. Its decode rate is the ceiling the API figure is compared with.
 * Usage: node --import tsx bench/direct.ts '{"model":"…","threads":2,"tokens":128,"prompt":"…","runs":3}'
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const { model: modelPath, threads, tokens, prompt, runs = 1 } = JSON.parse(process.argv[2] ?? "{}") as {
  model: string;
  threads: number;
  tokens: number;
  prompt: string;
  runs?: number;
};

const llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ sequences: 1, contextSize: 2048, threads });
const sequence = context.getSequence();

async function decodeRate(text: string): Promise<{ rate: number; generated: number }> {
  await sequence.clearHistory();
  let first = 0;
  let generated = 0;
  for await (const _token of sequence.evaluate(model.tokenize(text, true), { temperature: 0 })) {
    generated++;
    if (generated === 1) first = performance.now();
    if (generated >= tokens) break;
  }
  return { rate: (generated - 1) / ((performance.now() - first) / 1000), generated };
}

await decodeRate("warm up " + prompt); // first-run allocations
const rates: number[] = [];
for (let i = 0; i < runs; i++) rates.push((await decodeRate(prompt)).rate);
rates.sort((a, b) => a - b);
const rate = rates[(rates.length - 1) >> 1]!;
process.stdout.write(JSON.stringify({ rate, rates, uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? null }) + "\n");
await context.dispose();
await model.dispose();

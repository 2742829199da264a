/**
 * Child process of the bench: Sputnik's local engine driven in-process (LocalModel.generate: the
 * chat template, LlamaChat, sampling, the batching gate, text assembly), no HTTP and no serving
 * pipeline, one stream at a time, greedy. Beside bench/direct.ts (node-llama-cpp alone) and the
 * API figure, it says which layer a 1-stream gap sits in.
 * Usage: node --import tsx bench/engineInProcess.ts '{"model":"…","threads":2,"parallel":8,"tokens":128,"prompt":"…","runs":3}'
 */
import { LocalModel } from "../src/engines/local/localModel.ts";

const { model: modelPath, threads, parallel, tokens, prompt, runs = 1 } = JSON.parse(process.argv[2] ?? "{}") as {
  model: string;
  threads: number;
  parallel: number;
  tokens: number;
  prompt: string;
  runs?: number;
};

// The same layout as the server the bench starts (contextSize is per sequence there too).
const model = await LocalModel.load({ id: "bench", path: modelPath, threads, parallel, contextSize: 4096 });

async function decodeRate(text: string): Promise<number> {
  let first = 0;
  let chunks = 0;
  let generated = 0;
  for await (const event of model.generate({ model: "bench", messages: [{ role: "user", content: text }], maxTokens: tokens, temperature: 0 })) {
    if (event.type === "content" || event.type === "reasoning") {
      chunks++;
      if (chunks === 1) first = performance.now();
    }
    if (event.type === "usage") generated = event.usage.completion_tokens;
  }
  const end = performance.now();
  // The answer's re-read runs after it: wait, as the bench's pauses between runs do for the server.
  await model.rereadsDone();
  return (generated - 1) / ((end - first) / 1000);
}

await decodeRate("warm up " + prompt);
const rates: number[] = [];
for (let i = 0; i < runs; i++) rates.push(await decodeRate(`${i} ${prompt}`));
rates.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ rate: rates[(rates.length - 1) >> 1]!, rates }) + "\n");
await model.dispose();

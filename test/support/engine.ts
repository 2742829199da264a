/**
 * Direct access to the local engine for engine tests: a LocalModel of a generated test model
 * (one thread, disposed when the test ends) and a helper that runs one generation to the end.
 */
import type { TestContext } from "node:test";
import type { Usage, ChatMessage, GenerationRequest, FinishReason } from "../../src/engines/types.ts";
import { LocalModel, type LocalModelOptions } from "../../src/engines/local/localModel.ts";
import { ensureModel } from "../../src/gguf/catalog.ts";

export async function loadTestModel(
  t: Pick<TestContext, "after">,
  name: string,
  options: Partial<LocalModelOptions> = {},
): Promise<LocalModel> {
  const model = await LocalModel.load({
    id: name,
    path: await ensureModel(name),
    threads: 1,
    parallel: 2,
    contextSize: 2048,
    ...options,
  });
  t.after(() => model.dispose()); // idempotent: a test may already have disposed it (a "restart")
  return model;
}

export interface Collected {
  reasoning: string;
  content: string;
  usage: Usage;
  finishReason: FinishReason | null;
}

export async function collect(
  model: LocalModel,
  messages: ChatMessage[],
  extra: Partial<GenerationRequest> = {},
  { waitForReread = true }: { waitForReread?: boolean } = {},
): Promise<Collected> {
  let reasoning = "";
  let content = "";
  let usage: Usage | null = null;
  let finishReason: FinishReason | null = null;
  for await (const event of model.generate({ model: model.options.id, messages, temperature: 0, ...extra })) {
    if (event.type === "reasoning") reasoning += event.text;
    else if (event.type === "content") content += event.text;
    else if (event.type === "usage") usage = event.usage;
    else if (event.type === "done") finishReason = event.finishReason;
  }
  if (!usage) throw new Error("the generation reported no usage");
  // After an answer the engine re-reads it into its sequence in the background (LocalModel.reread);
  // waiting for that keeps token meters read between two requests exact.
  if (waitForReread) await model.rereadsDone();
  return { reasoning, content, usage, finishReason };
}

/** Prompt tokens llama.cpp really evaluated on this model since `before` (its token meters). */
export function evaluatedSince(model: LocalModel, before: number): number {
  return inputMeter(model) - before;
}

/** Sum of the sequences' input-token meters: every prompt token evaluated except the one whose logits are read. */
export function inputMeter(model: LocalModel): number {
  return model.pool.sequences().reduce((sum, { sequence }) => sum + sequence.tokenMeter.usedInputTokens, 0);
}

import type { LlamaContextSequence, LlamaModel, Token, TokenBias } from "node-llama-cpp";
import { EngineError, type EngineEvent, type FinishReason, type GenerationRequest, type TokenLogprob } from "../types.ts";
import { tokenLogprob, type TokenTexts } from "./logprobs.ts";
import { sequencePenalty, type PenaltyOptions } from "./sampling.ts";
import { sharedPrefixLength } from "./sequencePool.ts";
import { StopText } from "./stopText.ts";
import { TextAssembler } from "./textAssembler.ts";

/**
 * Raw-text completions (`GenerationRequest.completion`, the /v1/completions endpoint): the prompt
 * is the model's input as it is — no chat template — and, with a suffix, fill-in-the-middle in the
 * model's own FIM format. Generated with the low-level `LlamaContextSequence.evaluateWithMetadata`
 * (LlamaCompletion would silently shift the context when the input does not fit; here the prompt
 * is counted and refused up front like a chat prompt).
 */

/** Refuses what a model cannot do for a raw completion, without tokenizing. */
export function checkCompletion(model: LlamaModel, modelId: string, request: GenerationRequest): void {
  const completion = request.completion;
  if (!completion) return;
  if (completion.suffix !== undefined && !fimSupported(model)) {
    throw new EngineError(
      `The model '${modelId}' does not support fill-in-the-middle completions (its GGUF has no FIM prefix/suffix tokens); send the request without suffix.`,
      400,
      "fim_not_supported",
      "suffix",
    );
  }
}

function fimSupported(model: LlamaModel): boolean {
  return model.tokens.infill.prefix != null && model.tokens.infill.suffix != null;
}

/**
 * The prompt's tokens: BOS where the model wants it, then the text; with a suffix, the FIM layout
 * node-llama-cpp and llama-server use: `<PRE> prefix <SUF> suffix <MID>` when the model has a
 * middle token, else `<SUF> suffix <PRE> prefix`. User text is tokenized as text: special-token
 * text in it stays text.
 */
export function completionPromptTokens(model: LlamaModel, completion: NonNullable<GenerationRequest["completion"]>): Token[] {
  const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
  const text = (value: string) => (value === "" ? [] : model.tokenize(value, false, "trimLeadingSpace"));
  if (completion.suffix === undefined) return [...bos, ...text(completion.prompt)];
  const { prefix, suffix, middle } = model.tokens.infill;
  if (prefix == null || suffix == null) throw new EngineError("This model does not support fill-in-the-middle completions.", 400, "fim_not_supported", "suffix");
  if (middle != null) return [...bos, prefix, ...text(completion.prompt), suffix, ...text(completion.suffix), middle];
  return [...bos, suffix, ...text(completion.suffix), prefix, ...text(completion.prompt)];
}

export interface RawCompletionInput {
  model: LlamaModel;
  sequence: LlamaContextSequence;
  prompt: Token[];
  request: GenerationRequest;
  maxTokens: number;
  signal: AbortSignal;
  emit: (event: EngineEvent) => void;
  penalty: PenaltyOptions | false;
  tokenBias: TokenBias | undefined;
  /** Set when the request asked for logprobs. */
  logprobs: { texts: TokenTexts; top: number } | null;
}

export interface RawCompletionResult {
  finishReason: FinishReason;
  /** Prompt tokens whose KV state was reused. */
  reused: number;
  /** Tokens sampled (the end-of-generation token included, as the chat path counts it). */
  sampled: number;
}

/** Generates a raw completion on `sequence`, emitting `content` (and `logprobs`) events. */
export async function runRawCompletion(input: RawCompletionInput): Promise<RawCompletionResult> {
  const { model, sequence, prompt, request, signal, emit } = input;
  // Keep the longest prefix the sequence already holds; at least one token is evaluated for logits.
  const reused = Math.min(sharedPrefixLength(sequence.contextTokens, prompt), prompt.length - 1);
  if (sequence.nextTokenIndex > reused) await sequence.eraseContextTokenRanges([{ start: reused, end: sequence.nextTokenIndex }]);

  const generated: Token[] = [];
  const stop = new StopText(request.stop ?? []);
  // Logprobs wait until the text they spell is released (a stop sequence's tokens never are).
  let produced = 0;
  let released = 0;
  let unassembled: TokenLogprob[] = [];
  const spelled: Array<{ logprob: TokenLogprob; end: number }> = [];
  const release = (text: string) => {
    if (text.length === 0) return;
    released += text.length;
    const ready: TokenLogprob[] = [];
    while (spelled.length > 0 && spelled[0]!.end <= released) ready.push(spelled.shift()!.logprob);
    if (ready.length > 0) emit({ type: "logprobs", channel: "content", tokens: ready });
    emit({ type: "content", text });
  };
  const assembler = new TextAssembler(model, (_kind, text) => {
    produced += text.length;
    for (const logprob of unassembled) spelled.push({ logprob, end: produced });
    unassembled = [];
    release(stop.push(text));
  });

  const wantLogprobs = input.logprobs !== null;
  const iterator = sequence.evaluateWithMetadata(
    prompt.slice(reused),
    { confidence: wantLogprobs, probabilities: wantLogprobs && (input.logprobs?.top ?? 0) > 0 },
    {
      temperature: request.temperature ?? 0.6,
      ...(request.topP !== undefined ? { topP: request.topP } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(input.penalty ? { repeatPenalty: sequencePenalty(input.penalty, () => generated.slice(-(input.penalty as PenaltyOptions).lastTokens)) } : {}),
      ...(input.tokenBias ? { tokenBias: input.tokenBias } : {}),
      yieldEogToken: true,
    },
  );
  let sampled = 0;
  let finishReason: FinishReason = "length";
  try {
    if (input.maxTokens <= 0) return { finishReason, reused, sampled };
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      sampled++;
      const { token } = step.value as { token: Token; confidence?: number; probabilities?: Map<Token, number> };
      if (model.isEogToken(token)) {
        finishReason = "stop";
        break;
      }
      const context = generated.length > 0 ? generated.slice(-4) : prompt.slice(-4);
      generated.push(token);
      if (input.logprobs) unassembled.push(tokenLogprob(input.logprobs.texts, input.logprobs.top, step.value as never));
      assembler.push("content", [token], model.detokenize([token], false, context));
      if (stop.stopped) {
        finishReason = "stop";
        break;
      }
      if (signal.aborted) {
        finishReason = "abort";
        break;
      }
      if (generated.length >= input.maxTokens) break;
    }
  } finally {
    await iterator.return(undefined as never);
  }
  assembler.flush();
  release(stop.flush());
  return { finishReason, reused, sampled };
}

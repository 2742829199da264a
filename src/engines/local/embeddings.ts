import type { LlamaEmbeddingContext, LlamaModel, Token } from "node-llama-cpp";
import { EngineError, type EmbeddingRequest, type Embeddings } from "../types.ts";

export interface LocalEmbedderOptions {
  id: string;
  /** Tokens per input at most (the model's context as loaded). */
  contextSize: number;
  threads: number;
  /** UTF-8 bytes of the vocabulary's longest token: a text of B bytes makes at least B / this many tokens. */
  maxTokenBytes: number;
  /** Token ids must be below it (native code is not given ids it would read out of bounds). */
  vocabularySize: number;
}

/**
 * One local model's embeddings, through node-llama-cpp's embedding context: a second llama.cpp
 * context on the same weights, created on the first request and kept (most models are never asked
 * for embeddings, and the context costs memory). It evaluates one input at a time — its own lock —
 * so however many embedding requests the admission queue lets through, one input's compute runs per
 * model; each waits off the event loop (evaluation is native and async).
 *
 * Vectors are L2-normalised, as OpenAI's are: clients compare them with dot products.
 */
export class LocalEmbedder {
  private context: Promise<LlamaEmbeddingContext> | null = null;
  /** Texts tokenized since load (tests read it: refusals come before any). */
  textsTokenized = 0;
  /** Requests embedding now: an admin's unload waits for them like for completions. */
  inFlight = 0;

  constructor(
    private readonly model: LlamaModel,
    private readonly options: LocalEmbedderOptions,
  ) {}

  /** The length of this model's vectors (its hidden size). */
  get dimensions(): number {
    return this.model.embeddingVectorSize;
  }

  /**
   * Refuses without tokenizing: token ids outside the vocabulary, a `dimensions` other than the
   * model's, and texts whose bytes alone make more tokens than the context holds.
   */
  inspect(request: EmbeddingRequest): void {
    if (request.dimensions !== undefined && request.dimensions !== this.dimensions) {
      throw new EngineError(
        `The model '${this.options.id}' makes ${this.dimensions}-dimensional embeddings and cannot shorten them; leave out dimensions or send ${this.dimensions}.`,
        400,
        "invalid_dimensions",
        "dimensions",
      );
    }
    request.input.forEach((item, index) => {
      if (typeof item === "string") {
        const bytes = Buffer.byteLength(item, "utf8");
        const atLeast = Math.ceil(bytes / this.options.maxTokenBytes);
        if (atLeast >= this.options.contextSize) throw tooLong(this.options, index, `at least ${atLeast}`);
        return;
      }
      if (item.length >= this.options.contextSize) throw tooLong(this.options, index, String(item.length));
      const bad = item.find((id) => id >= this.options.vocabularySize);
      if (bad !== undefined) {
        throw new EngineError(`input[${index}] holds token id ${bad}, but the vocabulary of '${this.options.id}' has ${this.options.vocabularySize} tokens.`, 400, "invalid_token", "input");
      }
    });
  }

  /**
   * Tokenizes every input first (so an input too long is refused before any is evaluated), then
   * evaluates them one by one. `promptTokens` counts what is evaluated: the text's tokens plus the
   * begin/end tokens the model's tokenizer adds.
   */
  async embed(request: EmbeddingRequest): Promise<Embeddings> {
    this.inFlight++;
    try {
      return await this.run(request);
    } finally {
      this.inFlight--;
    }
  }

  private async run(request: EmbeddingRequest): Promise<Embeddings> {
    this.inspect(request);
    const context = await this.open();
    const inputs: Array<{ tokens: Token[]; length: number }> = [];
    for (const [index, item] of request.input.entries()) {
      // Tokenizing is synchronous: one input (≤ 32K characters, ~15 ms) per event-loop turn.
      if (index > 0) await new Promise((resolve) => setImmediate(resolve));
      if (typeof item === "string") this.textsTokenized++;
      const tokens = typeof item === "string" ? this.model.tokenize(item) : (item as Token[]);
      // Counts the tokens node-llama-cpp will evaluate: a token array gets no tokenizing here.
      const length = context.calculateInputLength(tokens);
      if (length >= this.options.contextSize) throw tooLong(this.options, index, String(length));
      inputs.push({ tokens, length });
    }
    const data: number[][] = [];
    let promptTokens = 0;
    for (const { tokens, length } of inputs) {
      if (request.signal?.aborted) throw new EngineError("The request was cancelled", 499, "cancelled");
      const { vector } = await context.getEmbeddingFor(tokens);
      data.push(normalise(vector));
      promptTokens += length;
    }
    return { data, promptTokens };
  }

  private open(): Promise<LlamaEmbeddingContext> {
    this.context ??= this.model
      .createEmbeddingContext({
        contextSize: this.options.contextSize,
        // Encoder models (BERT-like) need a whole input in one batch; decoders do not mind.
        batchSize: this.options.contextSize,
        threads: this.options.threads,
      })
      .catch((error: unknown) => {
        this.context = null;
        throw new EngineError(`The model '${this.options.id}' could not open an embedding context: ${(error as Error).message}`, 500, "engine_error");
      });
    return this.context;
  }

  async dispose(): Promise<void> {
    const context = await this.context?.catch(() => null);
    await context?.dispose();
  }
}

function tooLong(options: LocalEmbedderOptions, index: number, tokens: string): EngineError {
  return new EngineError(
    `input[${index}] is ${tokens} tokens long; the model '${options.id}' embeds at most ${options.contextSize - 1} tokens per input.`,
    400,
    "context_length_exceeded",
    "input",
  );
}

/** The unit vector in the same direction (a zero vector stays zero). */
export function normalise(vector: readonly number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((x) => x / norm) : [...vector];
}

import path from "node:path";
import {
  DraftSequenceTokenPredictor,
  InputLookupTokenPredictor,
  LlamaChat,
  resolveChatWrapper,
  type ChatModelFunctions,
  type ChatWrapper,
  type LlamaChatResponseFunctionCallParamsChunk,
  type Llama,
  type LlamaContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
  type TokenPredictor,
} from "node-llama-cpp";
import { EventChannel } from "../eventChannel.ts";
import { StreamTidy } from "../streamTidy.ts";
import {
  EngineError,
  type ChatMessage,
  type EmbeddingRequest,
  type Embeddings,
  type EngineEvent,
  type FinishReason,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
  type ToolCall,
} from "../types.ts";
import { BatchScheduler, sequenceIdOf, type BatchStats } from "./batching.ts";
import type { LocalModelSettings, SpeculativeSettings } from "./config.ts";
import { ContextCache, type CacheStats } from "./contextCache.ts";
import { LocalEmbedder } from "./embeddings.ts";
import { grammarFactoryFor } from "./grammars.ts";
import { sharedLlama } from "./llama.ts";
import { assertFits, autoParallel, availableMemory, memoryEstimator } from "./memoryCheck.ts";
import { modelFingerprint } from "./modelFingerprint.ts";
import { LogprobRecorder, LogprobTidy, TokenTexts } from "./logprobs.ts";
import { NextTurnAhead, type AheadStats } from "./nextTurnAhead.ts";
import { oneSamplingAtATime } from "./oneSamplingAtATime.ts";
import { placePrefix } from "./prefixPlacement.ts";
import { isPrefixCompletion, toChatHistory } from "./prompt.ts";
import { checkCompletion, completionPromptTokens, runRawCompletion } from "./rawCompletion.ts";
import { checkLogitBias, penaltyOptions, tokenBiasFor } from "./sampling.ts";
import { SequencePool, sharedPrefixLength, type PooledSequence } from "./sequencePool.ts";
import { TextAssembler } from "./textAssembler.ts";
import { checkStrictTools, checkTools, involvesTools, NATIVE_TOOL_SYNTAX, planTools, toolCallFailure, toolChatWrapper, ToolCallStream } from "./tools.ts";

export interface LocalModelOptions {
  id: string;
  path: string;
  threads: number;
  /** Sequences decoded together; "auto": sized from the memory available (see memoryCheck.ts). */
  parallel: number | "auto";
  contextSize: number;
  note?: string;
  /** Operator settings of this model (thinking cap, speculative decoding). */
  settings?: LocalModelSettings;
  /** Disk cache of KV states; absent: no disk cache. */
  contextCache?: { dir: string; maxBytes: number; minTokens: number };
  /** Memory the model may use; default: what the system has available. */
  memoryBudgetBytes?: number;
  /**
   * Memory the models already loaded in this process take, when this one is loaded beside them at
   * run time (src/runtime/modelManager.ts): taken off `memoryBudgetBytes` (see availableMemory).
   */
  memoryInUseBytes?: number;
  warn?: (message: string) => void;
}

/** Tokens per llama_decode call: node-llama-cpp's default, stated so the batch statistics know it. */
const BATCH_SIZE = 512;
/**
 * Tokens per step when re-reading an answer after its request (see `reread`): small, so a request
 * that wants the sequence waits at most one batch, and streams decoding meanwhile are slowed little.
 */
const SETTLE_CHUNK = 32;

export interface RereadStats {
  /** Answers re-read into their sequence in the form the next turn sends them (after or while generated). */
  completed: number;
  /** Re-reads stopped early because a request needed the sequence (or at shutdown). */
  abandoned: number;
  /** Tokens evaluated by re-reads. */
  tokens: number;
  /** Of the above, the next-turn forms prepared while the answer was generated (see nextTurnAhead.ts). */
  ahead: AheadStats;
}

export interface LocalModelStats {
  batches: BatchStats;
  contextCache: CacheStats | null;
  reread: RereadStats;
  /** Speculative decoding: predicted tokens the model confirmed / rejected, summed over sequences. */
  speculative: { validated: number; refuted: number; acceptanceRate: number | null } | null;
  /** Request prompts tokenized since load (re-reads excluded). */
  promptTokenizations: number;
}

/** The options a model was loaded with, "auto" resolved to a number. */
export interface ResolvedLocalModelOptions extends LocalModelOptions {
  parallel: number;
  /**
   * What the memory check estimated this model takes (weights + contexts), on the CPU; undefined
   * with a GPU (node-llama-cpp sizes the offload). Summed as `memoryInUseBytes` for the next load.
   */
  memoryBytes?: number;
}

/**
 * One loaded GGUF model: its weights, one llama.cpp context with `parallel` sequences, and the
 * chat wrapper resolved from the model's own chat template.
 */
export class LocalModel {
  private readonly chats = new Map<number, LlamaChat>();
  private disposing: Promise<void> | null = null;
  private readonly rereading = new Set<Promise<void>>();
  private readonly rereadCounters = { completed: 0, abandoned: 0, tokens: 0 };
  private readonly aheadCounters: AheadStats = { prepared: 0, abandoned: 0, copiedTokens: 0, tokens: 0 };
  /** Prompts tokenized to serve requests (not re-reads): one per request is the goal (tests read it). */
  private promptTokenizations = 0;
  /**
   * The longest token of the vocabulary, in UTF-8 bytes of its text: no token covers more bytes of
   * a prompt, so a prompt of B bytes makes at least B / this many tokens — a bound known without
   * tokenizing (see `inspect`).
   */
  private readonly maxTokenBytes: number;
  /** /v1/embeddings for this model (its own context, opened on first use); null when it does not embed. */
  private readonly embedder: LocalEmbedder | null;

  private constructor(
    readonly options: ResolvedLocalModelOptions,
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    readonly pool: SequencePool,
    private readonly chatWrapper: ChatWrapper,
    private readonly batches: BatchScheduler,
    private readonly cache: ContextCache | null,
    private readonly draft: { model: LlamaModel; context: LlamaContext } | null,
  ) {
    this.maxTokenBytes = longestTokenBytes(model);
    this.embedder =
      (options.settings?.embeddings ?? declaresPooling(model))
        ? new LocalEmbedder(model, { id: options.id, contextSize: context.contextSize, threads: options.threads, maxTokenBytes: this.maxTokenBytes, vocabularySize: this.vocabularySize })
        : null;
  }

  static async load(requested: LocalModelOptions): Promise<LocalModel> {
    const llama = await sharedLlama();
    const options = await resolveLayout(llama, requested);
    const speculative = options.settings?.speculative;
    const cleanup: Array<() => Promise<void>> = [];
    try {
      const model = await llama.loadModel({ modelPath: options.path });
      cleanup.push(() => model.dispose());
      const contextSize = Math.min(options.contextSize, model.trainContextSize);
      const batches = new BatchScheduler(BATCH_SIZE);
      const context = await model.createContext({
        sequences: options.parallel,
        contextSize,
        threads: options.threads,
        batchSize: BATCH_SIZE,
        batching: batches.options(),
      });
      batches.attach(context);
      oneSamplingAtATime(context);
      cleanup.push(() => context.dispose());
      const draft = speculative?.type === "draft" ? await loadDraft(llama, speculative.model, options, contextSize) : null;
      if (draft) cleanup.push(() => draft.model.dispose());
      const sequences = Array.from({ length: options.parallel }, () =>
        context.getSequence(speculative ? { tokenPredictor: tokenPredictor(speculative, draft) } : {}),
      );
      const cache = options.contextCache
        ? ContextCache.open({
            ...options.contextCache,
            modelHash: await modelFingerprint(options.path, path.join(options.contextCache.dir, "model-hashes.json")),
            ...(options.warn ? { warn: options.warn } : {}),
          })
        : null;
      const chatWrapper = resolveChatWrapper(model, { customWrapperSettings: NATIVE_TOOL_SYNTAX });
      return new LocalModel(options, model, context, new SequencePool(sequences), chatWrapper, batches, cache, draft);
    } catch (error) {
      for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
      throw error;
    }
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Reasoning models are those whose chat wrapper knows a "thought" segment (<think>…</think>). */
  get reasoning(): boolean {
    return this.chatWrapper.settings.segments?.thought != null;
  }

  info(): ModelInfo {
    return {
      id: this.options.id,
      engine: "local",
      ownedBy: "sputnik",
      contextLength: this.contextSize,
      reasoning: this.reasoning,
      ...(this.options.note ? { note: this.options.note } : {}),
      ...(this.embedder ? { embedding: { dimensions: this.embedder.dimensions } } : {}),
    };
  }

  /** Cheap checks of an embedding request (see LocalEmbedder.inspect); 400 when the model does not embed. */
  inspectEmbedding(request: EmbeddingRequest): void {
    this.requireEmbedder().inspect(request);
  }

  /** The request's vectors, L2-normalised, and the tokens evaluated (see LocalEmbedder). */
  embed(request: EmbeddingRequest): Promise<Embeddings> {
    return this.requireEmbedder().embed(request);
  }

  /** Embedding requests running now (see LocalEngine.activeRequests). */
  get embeddingsInFlight(): number {
    return this.embedder?.inFlight ?? 0;
  }

  /** Embedding inputs (texts) tokenized since load; 0 for a model that does not embed. */
  get embeddingTextsTokenized(): number {
    return this.embedder?.textsTokenized ?? 0;
  }

  private requireEmbedder(): LocalEmbedder {
    if (!this.embedder) throw new EngineError(`The model '${this.options.id}' does not create embeddings.`, 400, "model_not_embedding", "model");
    return this.embedder;
  }

  stats(): LocalModelStats {
    let speculative: LocalModelStats["speculative"] = null;
    if (this.options.settings?.speculative) {
      let validated = 0;
      let refuted = 0;
      for (const { sequence } of this.pool.sequences()) {
        validated += sequence.tokenPredictions.validated;
        refuted += sequence.tokenPredictions.refuted;
      }
      const proposed = validated + refuted;
      speculative = { validated, refuted, acceptanceRate: proposed > 0 ? validated / proposed : null };
    }
    return {
      batches: this.batches.stats(),
      contextCache: this.cache?.stats() ?? null,
      reread: {
        completed: this.rereadCounters.completed + this.aheadCounters.prepared,
        abandoned: this.rereadCounters.abandoned + this.aheadCounters.abandoned,
        tokens: this.rereadCounters.tokens + this.aheadCounters.tokens,
        ahead: { ...this.aheadCounters },
      },
      speculative,
      promptTokenizations: this.promptTokenizations,
    };
  }

  /** The reasoning-token budget of a request, after the operator's cap for this model. */
  thinkingBudget(request: GenerationRequest): number | undefined {
    if (request.thinking === false) return 0;
    const cap = this.options.settings?.maxThinkingTokens;
    if (cap === undefined) return request.thinkingBudget;
    return Math.min(request.thinkingBudget ?? cap, cap);
  }

  /** Tokenizes the prompt exactly as the chat wrapper will lay it out for the model. */
  promptTokens(request: Pick<GenerationRequest, "messages"> & Partial<GenerationRequest>): Token[] {
    if (request.completion) return completionPromptTokens(this.model, request.completion);
    const history = toChatHistory(request.messages, this.chatWrapper);
    // Tools are documented in the prompt, as LlamaChat lays it out (see tools.ts).
    const tools = planTools(request);
    const wrapper = involvesTools(request, tools) ? toolChatWrapper(this.chatWrapper, tools) : this.chatWrapper;
    const { contextText } = wrapper.generateContextState({ chatHistory: history, ...(tools ? { availableFunctions: tools.callable } : {}) });
    return contextText.tokenize(this.model.tokenizer);
  }

  /**
   * The tokens every next turn of this conversation starts with, once `answer` is sent back as the
   * assistant's message: the prompt up to where the next user message's own text begins. Found as
   * the common part of two renderings that differ only in that text.
   */
  nextTurnTokens(messages: GenerationRequest["messages"], answer: string | ChatMessage, tools: ToolOptions = {}): Token[] {
    // An answer with tool calls is followed by the first call's result instead of a user message.
    const sent: ChatMessage = typeof answer === "string" ? { role: "assistant", content: answer } : answer;
    const firstCall = sent.tool_calls?.[0];
    const next = (text: string): ChatMessage => (firstCall ? { role: "tool", tool_call_id: firstCall.id, content: text } : { role: "user", content: text });
    const withNext = (text: string) => this.promptTokens({ ...tools, messages: [...messages, sent, next(text)] });
    const a = withNext("a");
    return a.slice(0, sharedPrefixLength(a, withNext("b")));
  }

  /**
   * The next-turn form's tokens up to where the answer's own text begins: the common part of two
   * renderings that differ only in the answer.
   */
  nextTurnHead(messages: GenerationRequest["messages"], tools: ToolOptions = {}): Token[] {
    const withAnswer = (text: string) => this.promptTokens({ ...tools, messages: [...messages, { role: "assistant", content: text }, { role: "user", content: "c" }] });
    const a = withAnswer("a");
    return a.slice(0, sharedPrefixLength(a, withAnswer("b")));
  }

  /**
   * Whether to prepare this request's next-turn form while it is generated (see nextTurnAhead.ts):
   * by default for conversations that already have an answer in them — agent and tool loops send
   * their next turn at once, and a first message rarely gets one — since the preparation costs a
   * token of compute per generated token.
   */
  private preparesAhead(request: GenerationRequest): boolean {
    const settings = this.options.settings;
    if (settings?.rereads === false) return false;
    const mode = settings?.prepareNextTurn ?? "conversations";
    if (mode === "off") return false;
    // Raw completions are not conversations; a continued prefix is sent back merged with its continuation.
    if (request.completion || isPrefixCompletion(request.messages)) return false;
    return mode === "always" || request.messages.some((m) => m.role === "assistant" || m.role === "tool");
  }

  /** Resolves once no answer is being re-read (tests wait for it before measuring). */
  async rereadsDone(): Promise<void> {
    while (this.rereading.size > 0) await Promise.all(this.rereading);
  }

  /**
   * Refuses a prompt whose bytes cannot fit in the context however it is tokenized, without
   * tokenizing it: tokenizing is synchronous native work that grows with the prompt, and runs only
   * after rate limits and admission (src/serving/completion.ts).
   */
  inspect(request: GenerationRequest): void {
    let bytes = 0;
    for (const m of request.messages) bytes += Buffer.byteLength(m.content, "utf8") + Buffer.byteLength(m.name ?? "", "utf8");
    if (request.completion) bytes += Buffer.byteLength(request.completion.prompt, "utf8") + Buffer.byteLength(request.completion.suffix ?? "", "utf8");
    const atLeast = Math.ceil(bytes / this.maxTokenBytes);
    if (atLeast >= this.contextSize) {
      throw new EngineError(
        `This model's maximum context length is ${this.contextSize} tokens, but the messages use at least ${atLeast} tokens (${bytes} bytes).`,
        400,
        "context_length_exceeded",
        request.completion ? "prompt" : "messages",
      );
    }
    checkLogitBias(request, this.vocabularySize);
    checkTools(request);
    checkCompletion(this.model, this.options.id, request);
  }

  /** Tokens in the vocabulary (logit_bias keys must be below it). */
  private get vocabularySize(): number {
    const tokens = (this.model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
    return Array.isArray(tokens) ? tokens.length : 0;
  }

  /**
   * Tokenizes the prompt once and refuses what cannot fit, naming the numbers (llama.cpp would
   * silently drop it). `generate` reuses the tokens.
   */
  prepare(request: GenerationRequest): PreparedRequest {
    this.inspect(request);
    const { prompt, room } = this.preflight(request);
    const state: PreparedState = { messages: request.messages, prompt };
    return { model: this.info(), promptTokens: prompt.length, exact: true, room, state };
  }

  /** Refuses what cannot fit: the prompt in the context, then max_tokens in what is left. */
  preflight(request: GenerationRequest, tokens?: Token[]): { prompt: Token[]; room: number } {
    let prompt = tokens;
    if (!prompt) {
      this.promptTokenizations++;
      prompt = this.promptTokens(request);
    }
    const contextSize = this.contextSize;
    if (prompt.length >= contextSize) {
      throw new EngineError(
        `This model's maximum context length is ${contextSize} tokens, but the ${request.completion ? "prompt uses" : "messages use"} ${prompt.length} tokens.`,
        400,
        "context_length_exceeded",
        request.completion ? "prompt" : "messages",
      );
    }
    const room = contextSize - prompt.length;
    if (request.maxTokens !== undefined && request.maxTokens > room) {
      throw new EngineError(
        `max_tokens is ${request.maxTokens}, but only ${room} tokens are left in the ${contextSize}-token context after the ${prompt.length}-token prompt.`,
        400,
        "context_length_exceeded",
        "max_tokens",
      );
    }
    return { prompt, room };
  }

  async *generate(request: GenerationRequest, prepared?: PreparedRequest): AsyncGenerator<EngineEvent> {
    // Tokens prepared for these very messages are reused; the checks rerun (max_tokens may have
    // been tightened by billing since), which costs no tokenizing.
    const state = prepared?.state as PreparedState | undefined;
    const { prompt, room } = this.preflight(request, state?.messages === request.messages ? state.prompt : undefined);
    const grammar = await this.grammarFor(request);
    if (request.tools?.some((tool) => tool.strict)) {
      const factory = grammarFactoryFor(await sharedLlama());
      await checkStrictTools(request, (schema) => factory.forJsonSchema(schema));
    }

    const pooled = await this.pool.acquire(prompt, request.signal);
    const stop = new AbortController();
    const onClientAbort = () => stop.abort();
    request.signal?.addEventListener("abort", onClientAbort, { once: true });
    const channel = new EventChannel<EngineEvent>();
    let running: Promise<void> | null = null;
    // What the client saw as the answer, and whether all of it went out (up to the `done` event).
    let answer = "";
    const toolCalls: ToolCall[] = [];
    let delivered = false;
    // The next-turn form prepared on a spare sequence while the answer is generated.
    let ahead: NextTurnAhead | null = null;
    let aheadTried = !this.preparesAhead(request);
    try {
      if (request.signal?.aborted) return;
      if (this.cache) await placePrefix(this.cache, pooled.sequence, prompt);
      running = request.completion
        ? this.runCompletion(pooled, prompt, request, room, stop.signal, channel)
        : this.run(pooled, prompt, request, grammar, room, stop.signal, channel);
      for await (const event of channel) {
        if (!aheadTried && (event.type === "content" || event.type === "reasoning")) {
          // The first token: the prompt is evaluated, its KV cells can be copied.
          aheadTried = true;
          ahead = this.startAhead(pooled, request, prompt);
        }
        if (event.type === "content") {
          answer += event.text;
          ahead?.update(answer);
        } else if (event.type === "tool_call") {
          toolCalls[event.index] = { id: event.id, name: event.name, arguments: "" };
          // A turn with tool calls is sent back in another form (calls, then their results): the
          // text-only preparation cannot be finished; the re-read after the answer does it.
          ahead?.abandon();
          ahead = null;
        } else if (event.type === "tool_call_arguments") toolCalls[event.index]!.arguments += event.text;
        // Set before yielding: a consumer may stop iterating as soon as it has the `done` event.
        if (event.type === "done") {
          delivered = true;
          if (ahead?.alive) ahead.finish(this.nextTurnTokens(request.messages, answer, toolOptionsOf(request)));
        }
        yield event;
      }
    } finally {
      // Reached on completion, on error and when the consumer stops iterating (client left):
      // stop llama.cpp first, then free the sequence only once it is really idle.
      stop.abort();
      request.signal?.removeEventListener("abort", onClientAbort);
      await running?.catch(() => undefined);
      const sendsBack = delivered && !request.signal?.aborted && !this.disposing && !request.completion;
      if (!sendsBack) ahead?.abandon();
      if (sendsBack && !ahead?.alive && this.options.settings?.rereads !== false) {
        // A continued prefix is sent back next turn as one assistant message: prefix + continuation.
        const prefixed = isPrefixCompletion(request.messages);
        const sent = prefixed ? request.messages.at(-1)!.content + answer : answer;
        this.reread(pooled, prefixed ? request.messages.slice(0, -1) : request.messages, toolCalls.length > 0 ? { role: "assistant", content: sent, tool_calls: toolCalls } : sent, request);
      } else this.pool.release(pooled);
    }
  }

  private startAhead(pooled: PooledSequence, request: GenerationRequest, prompt: Token[]): NextTurnAhead | null {
    if (this.disposing || this.pool.waitingCount > 0) return null;
    let head: Token[];
    try {
      head = this.nextTurnHead(request.messages, toolOptionsOf(request));
    } catch {
      return null;
    }
    const host = { context: this.context, model: this.model, pool: this.pool, batches: this.batches, cache: this.cache, stats: this.aheadCounters, head };
    const ahead = NextTurnAhead.start(host, pooled, prompt);
    if (ahead) {
      this.rereading.add(ahead.done);
      void ahead.done.finally(() => this.rereading.delete(ahead.done));
    }
    return ahead;
  }

  /**
   * Re-reads a finished answer into its sequence in the form the next turn will send it, then frees
   * the sequence; the caller does not wait.
   *
   * Why: the sequence holds the answer as generated (after the reasoning, as sampled tokens), but
   * the next turn sends the answer back as text, without its reasoning (DeepSeek's rule and R1's
   * template), so a plain prefix match stops where the answer began and the whole answer is
   * evaluated again while the user waits for the next reply. Re-reading it now, in time no request
   * is asking for, makes the next turn evaluate only its new message. A request that needs the
   * sequence stops the re-read within one small step; what was re-read so far still counts.
   */
  private reread(pooled: PooledSequence, messages: GenerationRequest["messages"], answer: string | ChatMessage, tools: ToolOptions = {}): void {
    let target: Token[];
    try {
      target = this.nextTurnTokens(messages, answer, { tools: tools.tools, toolChoice: tools.toolChoice, parallelToolCalls: tools.parallelToolCalls });
    } catch {
      this.pool.release(pooled);
      return;
    }
    const { sequence } = pooled;
    const keep = sharedPrefixLength(sequence.contextTokens, target);
    // Nothing to do, or more than the context holds (the next turn would not fit either).
    if (keep >= target.length || target.length >= this.contextSize - 1) {
      this.pool.release(pooled);
      return;
    }
    const work = this.pool.releaseAfter(pooled, target, async (signal) => {
      // Background work: its chunks wait while any stream is being generated (see BatchScheduler).
      const leaveBatching = this.batches.backgroundWork(sequenceIdOf(sequence), "idle");
      const onAbort = () => this.batches.hurry(sequenceIdOf(sequence));
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        if (sequence.nextTokenIndex > keep) await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
        for (let at = keep; at < target.length; at += SETTLE_CHUNK) {
          if (signal.aborted || this.disposing) {
            this.rereadCounters.abandoned++;
            return;
          }
          const chunk = target.slice(at, at + SETTLE_CHUNK);
          await sequence.evaluateWithoutGeneratingNewTokens(chunk);
          this.rereadCounters.tokens += chunk.length;
        }
        this.rereadCounters.completed++;
      } finally {
        signal.removeEventListener("abort", onAbort);
        leaveBatching();
      }
    });
    this.rereading.add(work);
    void work.finally(() => this.rereading.delete(work));
  }

  private async run(
    pooled: PooledSequence,
    prompt: Token[],
    request: GenerationRequest,
    grammar: LlamaGrammar | undefined,
    room: number,
    signal: AbortSignal,
    channel: EventChannel<EngineEvent>,
  ): Promise<void> {
    const tools = planTools(request);
    // Tool requests get their own LlamaChat over the tool-aware wrapper (tools.ts), disposed after.
    const toolChat = involvesTools(request, tools)
      ? new LlamaChat({ contextSequence: pooled.sequence, chatWrapper: toolChatWrapper(this.chatWrapper, tools), autoDisposeSequence: false })
      : null;
    const chat = toolChat ?? this.chatFor(pooled);
    const toolStream = new ToolCallStream((event) => channel.push(event));
    // A response_format grammar or the tools' grammars (checkTools refuses both at once).
    const constraint: { grammar: LlamaGrammar } | { functions: ChatModelFunctions; documentFunctionParams: boolean; maxParallelFunctionCalls?: number; onFunctionCallParamsChunk(chunk: LlamaChatResponseFunctionCallParamsChunk): void } | object = tools
      ? {
          functions: tools.callable,
          documentFunctionParams: true,
          ...(tools.maxParallel !== undefined ? { maxParallelFunctionCalls: tools.maxParallel } : {}),
          onFunctionCallParamsChunk: (chunk: LlamaChatResponseFunctionCallParamsChunk) => toolStream.chunk(chunk.callIndex, chunk.functionName, chunk.paramsChunk),
        }
      : grammar
        ? { grammar }
        : {};
    // LlamaChat keeps the KV state of the longest shared prefix and evaluates only the rest, so
    // the shared prefix is exactly what llama.cpp reuses; one token is always re-evaluated to
    // produce fresh logits.
    const reused = Math.min(sharedPrefixLength(pooled.sequence.contextTokens, prompt), prompt.length - 1);
    // Tokens llama.cpp sampled, including any still held back by stop-trigger detection.
    const sampledBefore = pooled.sequence.tokenMeter.usedOutputTokens;
    let reasoningTokens = 0;
    let completionTokens = 0;
    // A continued prefix keeps its text exactly: the continuation's leading whitespace is content.
    const tidy = isPrefixCompletion(request.messages) ? null : new StreamTidy((kind, text) => channel.push({ type: kind, text }));
    const assembler = new TextAssembler(this.model, (kind, text) => (tidy ? tidy.push(kind, text) : channel.push({ type: kind, text })));
    const logprobs = request.logprobs ? new LogprobRecorder(this.tokenTexts, request.logprobs.top) : null;
    const logprobTidy = tidy ? new LogprobTidy() : null;
    logprobs?.install(pooled.sequence);

    const thoughtBudget = this.thinkingBudget(request);
    const leaveBatching = this.batches.enter();
    try {
      const result = await chat.generateResponse(toChatHistory(request.messages, this.chatWrapper), {
        ...constraint,
        signal,
        stopOnAbortSignal: true,
        maxTokens: request.maxTokens ?? room,
        temperature: request.temperature ?? 0.6,
        topP: request.topP,
        topK: request.topK,
        seed: request.seed,
        // The OpenAI API's default is no penalty (node-llama-cpp's LlamaChat would apply one);
        // asked-for penalties count every generated token (see sampling.ts).
        repeatPenalty: penaltyOptions(request, request.maxTokens ?? room),
        tokenBias: tokenBiasFor(this.model, request),
        customStopTriggers: request.stop && request.stop.length > 0 ? request.stop : undefined,
        budgets: thoughtBudget !== undefined ? { thoughtTokens: thoughtBudget, includeCurrentResponse: false } : undefined,
        onResponseChunk: (chunk) => {
          const isThought = chunk.type === "segment" && chunk.segmentType === "thought";
          const isComment = chunk.type === "segment" && chunk.segmentType !== "thought";
          if (isThought) reasoningTokens += chunk.tokens.length;
          completionTokens += chunk.tokens.length;
          if (isComment) return;
          const kind = isThought ? "reasoning" : "content";
          if (logprobs && chunk.text.length > 0) {
            const taken = logprobs.take(chunk.tokens);
            const tokens = logprobTidy ? logprobTidy.tidy(kind, taken) : taken;
            if (tokens.length > 0) channel.push({ type: "logprobs", channel: kind, tokens });
          }
          assembler.push(kind, chunk.tokens, chunk.text);
        },
      });
      leaveBatching();
      logprobs?.uninstall();
      assembler.flush();
      const calls = result.functionCalls && result.functionCalls.length > 0 ? toolStream.finish(result.functionCalls) : [];
      const finishReason = calls.length > 0 ? "tool_calls" : toFinishReason(result.metadata.stopReason);
      completionTokens = Math.max(completionTokens, pooled.sequence.tokenMeter.usedOutputTokens - sampledBefore);
      const promptTokenCount = prompt.length;
      const miss = promptTokenCount - reused;
      channel.push({
        type: "usage",
        usage: {
          prompt_tokens: promptTokenCount,
          completion_tokens: completionTokens,
          total_tokens: promptTokenCount + completionTokens,
          prompt_cache_hit_tokens: promptTokenCount - miss,
          prompt_cache_miss_tokens: miss,
          completion_tokens_details: { reasoning_tokens: reasoningTokens },
          prompt_tokens_details: { cached_tokens: promptTokenCount - miss },
        },
      });
      // Which stop string ended it (Anthropic's `stop_sequence`): node-llama-cpp reports the trigger's parts.
      const trigger = result.metadata.stopReason === "customStopTrigger" ? result.metadata.customStopTrigger.join("") : undefined;
      const stopSequence = trigger !== undefined ? request.stop?.find((s) => s === trigger) : undefined;
      channel.push({ type: "done", finishReason, ...(stopSequence !== undefined ? { stopSequence } : {}) });
      channel.close();
    } catch (error) {
      leaveBatching();
      logprobs?.uninstall();
      channel.close(
        error instanceof EngineError
          ? error
          : (toolCallFailure(error) ?? new EngineError(`Generation failed: ${(error as Error).message}`, 500, "engine_error")),
      );
    } finally {
      toolChat?.dispose({ disposeSequence: false });
    }
  }

  /** A raw-text completion (plain or fill-in-the-middle; see rawCompletion.ts), with the chat path's usage rules. */
  private async runCompletion(
    pooled: PooledSequence,
    prompt: Token[],
    request: GenerationRequest,
    room: number,
    signal: AbortSignal,
    channel: EventChannel<EngineEvent>,
  ): Promise<void> {
    const sampledBefore = pooled.sequence.tokenMeter.usedOutputTokens;
    const maxTokens = request.maxTokens ?? room;
    const leaveBatching = this.batches.enter();
    try {
      const result = await runRawCompletion({
        model: this.model,
        sequence: pooled.sequence,
        prompt,
        request,
        maxTokens,
        signal,
        emit: (event) => channel.push(event),
        penalty: penaltyOptions(request, maxTokens),
        tokenBias: tokenBiasFor(this.model, request),
        logprobs: request.logprobs ? { texts: this.tokenTexts, top: request.logprobs.top } : null,
      });
      leaveBatching();
      const completionTokens = Math.max(result.sampled, pooled.sequence.tokenMeter.usedOutputTokens - sampledBefore);
      const miss = prompt.length - result.reused;
      channel.push({
        type: "usage",
        usage: {
          prompt_tokens: prompt.length,
          completion_tokens: completionTokens,
          total_tokens: prompt.length + completionTokens,
          prompt_cache_hit_tokens: result.reused,
          prompt_cache_miss_tokens: miss,
          completion_tokens_details: { reasoning_tokens: 0 },
          prompt_tokens_details: { cached_tokens: result.reused },
        },
      });
      channel.push({ type: "done", finishReason: result.finishReason });
      channel.close();
    } catch (error) {
      leaveBatching();
      channel.close(error instanceof EngineError ? error : new EngineError(`Generation failed: ${(error as Error).message}`, 500, "engine_error"));
    }
  }

  private texts: TokenTexts | null = null;

  /** Token texts and bytes for logprobs, built on first use. */
  private get tokenTexts(): TokenTexts {
    this.texts ??= new TokenTexts(this.model);
    return this.texts;
  }

  private chatFor(pooled: PooledSequence): LlamaChat {
    let chat = this.chats.get(pooled.index);
    if (!chat) {
      chat = new LlamaChat({ contextSequence: pooled.sequence, chatWrapper: this.chatWrapper, autoDisposeSequence: false });
      this.chats.set(pooled.index, chat);
    }
    return chat;
  }

  /** Built off the event loop under a time budget, and cached by schema (see grammars.ts). */
  private async grammarFor(request: GenerationRequest): Promise<LlamaGrammar | undefined> {
    return grammarFactoryFor(await sharedLlama()).forFormat(request.responseFormat);
  }

  /**
   * Saves what the sequences hold to the disk cache (so it survives the restart), then frees all.
   * Idempotent: later calls wait for the first.
   */
  dispose(): Promise<void> {
    this.disposing ??= this.release();
    return this.disposing;
  }

  private async release(): Promise<void> {
    this.pool.abandonSettling();
    await this.rereadsDone();
    if (this.cache) {
      for (const { sequence } of this.pool.sequences()) await this.cache.save(sequence);
    }
    for (const chat of this.chats.values()) chat.dispose({ disposeSequence: false });
    await this.embedder?.dispose();
    await this.context.dispose();
    await this.model.dispose();
    if (this.draft) {
      await this.draft.context.dispose();
      await this.draft.model.dispose();
    }
  }
}

function toFinishReason(stopReason: string): FinishReason {
  switch (stopReason) {
    case "maxTokens":
      return "length";
    case "abort":
      return "abort";
    default:
      return "stop";
  }
}

async function loadDraft(
  llama: Llama,
  modelPath: string,
  options: ResolvedLocalModelOptions,
  contextSize: number,
): Promise<{ model: LlamaModel; context: LlamaContext }> {
  const model = await llama.loadModel({ modelPath });
  try {
    const context = await model.createContext({ sequences: options.parallel, contextSize, threads: options.threads });
    oneSamplingAtATime(context);
    return { model, context };
  } catch (error) {
    await model.dispose();
    throw error;
  }
}

function tokenPredictor(
  settings: SpeculativeSettings,
  draft: { context: LlamaContext } | null,
): TokenPredictor {
  if (settings.type === "lookup") return new InputLookupTokenPredictor({ predictionLength: { max: settings.maxTokens } });
  if (!draft) throw new Error("the draft model is not loaded");
  return new DraftSequenceTokenPredictor(draft.context.getSequence(), {
    maxTokens: settings.maxTokens,
    minTokens: Math.min(settings.minTokens, settings.maxTokens),
    minConfidence: settings.minConfidence,
  });
}

/**
 * Decides the number of sequences ("auto": sized from memory) and, on the CPU, where everything
 * lives in RAM, refuses a load that cannot fit instead of being killed by the OOM killer halfway
 * through. With a GPU, node-llama-cpp sizes the offload itself.
 */
async function resolveLayout(llama: Llama, requested: LocalModelOptions): Promise<ResolvedLocalModelOptions> {
  if (llama.gpu !== false) {
    // "auto" then takes llama-server's own default.
    return { ...requested, parallel: requested.parallel === "auto" ? 4 : requested.parallel };
  }
  const speculative = requested.settings?.speculative;
  const main = await memoryEstimator(llama, requested.path);
  const draft = speculative?.type === "draft" ? await memoryEstimator(llama, speculative.model) : null;
  const estimate = (sequences: number) => {
    const layout = { contextSize: requested.contextSize, sequences };
    const total = main(layout);
    if (draft) {
      const d = draft(layout);
      total.modelBytes += d.modelBytes;
      total.contextBytes += d.contextBytes;
      total.perSequenceBytes += d.perSequenceBytes;
    }
    return total;
  };
  const available = availableMemory(requested.memoryBudgetBytes, requested.memoryInUseBytes);
  const parallel = requested.parallel === "auto" ? autoParallel(estimate, available) : requested.parallel;
  const fitted = estimate(parallel);
  assertFits(requested.id, fitted, available, { contextSize: requested.contextSize, sequences: parallel });
  return { ...requested, parallel, memoryBytes: fitted.modelBytes + fitted.contextBytes };
}

/** The request fields that decide how tools are rendered into a prompt. */
type ToolOptions = Pick<GenerationRequest, "tools" | "toolChoice" | "parallelToolCalls">;

/** What `prepare` hands to `generate`: the tokens of exactly these messages. */
interface PreparedState {
  messages: GenerationRequest["messages"];
  prompt: Token[];
}

/** Whether the GGUF declares how to pool token states into one vector (`<arch>.pooling_type`): embedding models do. */
function declaresPooling(model: LlamaModel): boolean {
  const metadata = model.fileInfo.metadata as Record<string, unknown> & { general?: { architecture?: string } };
  const arch = metadata.general?.architecture;
  const section = arch ? (metadata[arch] as { pooling_type?: unknown } | undefined) : undefined;
  // llama.cpp's enum: 0 none, 1 mean, 2 cls, 3 last, 4 rank (a reranker: scores, not vectors).
  return typeof section?.pooling_type === "number" && section.pooling_type >= 1 && section.pooling_type <= 3;
}

/** UTF-8 bytes of the vocabulary's longest token text (an upper bound on the prompt bytes one token covers). */
function longestTokenBytes(model: LlamaModel): number {
  const tokens = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens) || tokens.length === 0) return Number.POSITIVE_INFINITY;
  let longest = 1;
  for (const token of tokens) if (typeof token === "string") longest = Math.max(longest, Buffer.byteLength(token, "utf8"));
  return longest;
}

/** The parts of a request that change how its turns are rendered (the tools section of the prompt). */
function toolOptionsOf(request: GenerationRequest): ToolOptions {
  return { tools: request.tools, toolChoice: request.toolChoice, parallelToolCalls: request.parallelToolCalls };
}

/**
 * Grammars for `response_format`, built without stalling the event loop.
 *
 * node-llama-cpp's `llama.createGrammarForJsonSchema` does two things on the calling thread: it
 * turns the schema into GBNF text (JavaScript) and has llama.cpp parse that text (native, sync).
 * Both grow with the schema, the native parse with the square of the alternatives that can start
 * at one position (llama.cpp de-duplicates its parse stacks pairwise): one 80,000-value enum cost
 * ~30 s during which no other request was served. So here:
 *  - the GBNF text is built in a worker thread under a time budget (the worker is terminated when
 *    over it, and the request refused as too complex);
 *  - the native parse stays on this thread (a LlamaGrammar cannot cross threads), but it only
 *    ever sees text from schemas within the request bounds (JSON_SCHEMA_LIMITS in
 *    src/http/openai/chatCompletionSchema.ts), where it takes milliseconds, and text over
 *    `maxGrammarChars` is refused before it;
 *  - results, refusals included, are cached by a hash of the schema (bounded LRU), so a schema
 *    sent again costs nothing, and the same hostile schema sent again is refused at once.
 */
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { LlamaText, type Llama, type LlamaGrammar } from "node-llama-cpp";
import { ServiceError } from "../../errors.ts";
import type { ResponseFormat } from "../types.ts";

export interface GrammarFactoryOptions {
  /** Wall time the worker may spend turning one schema into GBNF text. */
  budgetMs?: number;
  /** Grammars (and refusals) kept, by schema hash. */
  cacheEntries?: number;
  /** GBNF text longer than this is refused before llama.cpp parses it on the event loop. */
  maxGrammarChars?: number;
  /** An idle worker is ended after this long (it holds its own V8 heap). */
  idleMs?: number;
}

export interface GrammarStats {
  /** Schemas answered from the cache (grammar or refusal). */
  hits: number;
  /** Schemas built (or refused) afresh. */
  misses: number;
  /** Builds stopped for running over the budget. */
  timeouts: number;
  /** Entries in the cache now. */
  cached: number;
}

const DEFAULTS: Required<GrammarFactoryOptions> = {
  budgetMs: 2000,
  cacheEntries: 128,
  maxGrammarChars: 2_000_000,
  idleMs: 60_000,
};

/** What a JSON-schema grammar stops on and trims: the same as node-llama-cpp's LlamaJsonSchemaGrammar. */
const JSON_GRAMMAR_OPTIONS = { stopGenerationTriggers: [LlamaText(["\n".repeat(4)])], trimWhitespaceSuffix: true };

const WORKER_URL = new URL("./grammarWorker.mjs", import.meta.url);

interface Job {
  id: number;
  schemaJson: string;
  resolve(grammar: string): void;
  reject(error: unknown): void;
}

type WorkerReply = { ready: true } | { id: number; grammar: string } | { id: number; error: string };

/**
 * Grammars for one llama.cpp binding (`grammarFactoryFor(llama)`). One worker, one job at a time:
 * the budget bounds each job, and the cache makes repeats free, so a queue of distinct hostile
 * schemas is what remains; the request bounds keep each of those short.
 */
export class GrammarFactory {
  private readonly options: Required<GrammarFactoryOptions>;
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();
  private jsonGrammar: Promise<LlamaGrammar> | null = null;
  private readonly counters = { hits: 0, misses: 0, timeouts: 0 };
  private worker: Worker | null = null;
  private workerReady: Promise<Worker> | null = null;
  private readonly queue: Job[] = [];
  private running: Job | null = null;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly llama: Llama,
    options: GrammarFactoryOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** The grammar a response format asks for; undefined for plain text. */
  async forFormat(format: ResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
    if (!format || format.type === "text") return undefined;
    if (format.type === "json_object") return this.forJsonObject();
    return this.forJsonSchema(format.json_schema.schema);
  }

  /** Any JSON object: llama.cpp's bundled json.gbnf, read and parsed once. */
  forJsonObject(): Promise<LlamaGrammar> {
    this.jsonGrammar ??= this.llama.getGrammarFor("json");
    this.jsonGrammar.catch(() => (this.jsonGrammar = null));
    return this.jsonGrammar;
  }

  /**
   * A grammar for `schema`, or a ServiceError: `invalid_request`/`invalid_json_schema` for a
   * schema node-llama-cpp cannot express, `unprocessable`/`response_format_too_complex` for one
   * over the budget or the grammar size bound.
   */
  forJsonSchema(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    const schemaJson = JSON.stringify(schema);
    const key = createHash("sha256").update(schemaJson).digest("base64url");
    const cached = this.cache.get(key);
    if (cached) {
      this.counters.hits++;
      // Map order is the LRU order: touch it.
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    this.counters.misses++;
    const built = this.build(schemaJson);
    this.cache.set(key, built);
    while (this.cache.size > this.options.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
    // Refusals of the schema itself are deterministic and stay cached; our own failures do not.
    built.catch((error: unknown) => {
      if (!(error instanceof ServiceError) || error.kind === "internal") {
        if (this.cache.get(key) === built) this.cache.delete(key);
      }
    });
    return built;
  }

  stats(): GrammarStats {
    return { ...this.counters, cached: this.cache.size };
  }

  /** Ends the worker (a later request starts a new one). */
  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.worker;
    this.worker = null;
    this.workerReady = null;
    if (worker) await worker.terminate();
  }

  private async build(schemaJson: string): Promise<LlamaGrammar> {
    const text = await this.gbnf(schemaJson);
    if (text.length > this.options.maxGrammarChars) {
      throw tooComplex(`its grammar would be ${text.length} characters; at most ${this.options.maxGrammarChars} are accepted`);
    }
    try {
      // Native and synchronous: milliseconds for schemas within the request bounds (measured in
      // grammars.test.ts), which is why it may stay on the event loop.
      return await this.llama.createGrammar({ grammar: text, ...JSON_GRAMMAR_OPTIONS });
    } catch (error) {
      throw unsupported((error as Error).message, error);
    }
  }

  /** The GBNF text of a schema, from the worker, within the budget. */
  private gbnf(schemaJson: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, schemaJson, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const job = this.queue.shift()!;
    this.running = job;
    void this.run(job).finally(() => {
      this.running = null;
      if (this.queue.length > 0) this.pump();
      else this.scheduleIdleClose();
    });
  }

  private async run(job: Job): Promise<void> {
    let worker: Worker;
    try {
      worker = await this.startedWorker();
    } catch (error) {
      job.reject(new ServiceError("internal", "The grammar worker could not start.", { code: "grammar_worker_failed", cause: error }));
      return;
    }
    await new Promise<void>((done) => {
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        settle();
        done();
      };
      // The budget starts when the job reaches a ready worker: its start-up is our cost, not the schema's.
      const timer = setTimeout(() => {
        this.counters.timeouts++;
        this.discardWorker(worker);
        finish(() => job.reject(tooComplex(`turning it into a grammar took longer than ${this.options.budgetMs} ms`)));
      }, this.options.budgetMs);
      const onMessage = (reply: WorkerReply) => {
        if (!("id" in reply) || reply.id !== job.id) return;
        if ("grammar" in reply) finish(() => job.resolve(reply.grammar));
        else finish(() => job.reject(unsupported(reply.error)));
      };
      const onError = (error: Error & { code?: string }) => {
        this.discardWorker(worker);
        // Its heap limit: the schema's fault. Anything else: ours.
        if (error.code === "ERR_WORKER_OUT_OF_MEMORY") finish(() => job.reject(tooComplex("turning it into a grammar needed too much memory")));
        else finish(() => job.reject(new ServiceError("internal", "The grammar worker failed.", { code: "grammar_worker_failed", cause: error })));
      };
      const onExit = () => {
        this.discardWorker(worker);
        finish(() => job.reject(new ServiceError("internal", "The grammar worker exited.", { code: "grammar_worker_failed" })));
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage({ id: job.id, schemaJson: job.schemaJson });
    });
  }

  private startedWorker(): Promise<Worker> {
    this.workerReady ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(WORKER_URL, {
        // Plain JavaScript: no need for the parent's --import tsx (which would only slow its start).
        execArgv: [],
        // A schema that balloons the converter ends this worker, not the server.
        resourceLimits: { maxOldGenerationSizeMb: 256 },
      });
      // Never what keeps the process alive.
      worker.unref();
      this.worker = worker;
      const onReady = (reply: WorkerReply) => {
        if ("ready" in reply) {
          worker.off("error", onFail);
          worker.off("exit", onFail);
          resolve(worker);
        }
      };
      const onFail = (error: unknown) => {
        worker.off("message", onReady);
        this.discardWorker(worker);
        reject(error instanceof Error ? error : new Error(`grammar worker exited with code ${String(error)}`));
      };
      worker.on("message", onReady);
      worker.once("error", onFail);
      worker.once("exit", onFail);
    });
    return this.workerReady;
  }

  private discardWorker(worker: Worker): void {
    if (this.worker === worker) {
      this.worker = null;
      this.workerReady = null;
    }
    worker.removeAllListeners("exit");
    // An error after termination has no one left to tell.
    worker.on("error", () => {});
    void worker.terminate();
  }

  private scheduleIdleClose(): void {
    if (!this.worker) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.running && this.queue.length === 0) void this.close();
    }, this.options.idleMs);
    this.idleTimer.unref();
  }
}

function tooComplex(why: string): ServiceError {
  return new ServiceError("unprocessable", `response_format.json_schema.schema is too complex: ${why}.`, {
    code: "response_format_too_complex",
    param: "response_format",
  });
}

function unsupported(why: string, cause?: unknown): ServiceError {
  return new ServiceError("invalid_request", `response_format.json_schema.schema is not supported: ${why}`, {
    code: "invalid_json_schema",
    param: "response_format",
    ...(cause !== undefined ? { cause } : {}),
  });
}

const factories = new WeakMap<Llama, GrammarFactory>();

/** The grammar factory of a llama.cpp binding (one per binding, made on first use). */
export function grammarFactoryFor(llama: Llama, options?: GrammarFactoryOptions): GrammarFactory {
  let factory = factories.get(llama);
  if (!factory) {
    factory = new GrammarFactory(llama, options);
    factories.set(llama, factory);
  }
  return factory;
}

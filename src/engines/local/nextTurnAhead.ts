import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { withLock } from "lifecycle-utils";
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { sequenceIdOf, type BatchScheduler } from "./batching.ts";
import type { ContextCache } from "./contextCache.ts";
import { sharedPrefixLength, type PooledSequence, type SequencePool, type Settling } from "./sequencePool.ts";

/**
 * Tokens of the answer held back from the next-turn form while it is generated: the text after
 * them may still change how they tokenize (a word goes on, spaces gather).
 */
const HOLD_TOKENS = 2;
/** A tail this long with no word boundary (text without spaces) is committed all but HOLD_TOKENS. */
const LONG_TAIL_CHARS = 256;
/** The last step, once the answer is final: one evaluation when it is this small, else chunks. */
const FINAL_CHUNK = 64;
/**
 * Tokens of the next-turn form evaluated together while the answer is still being generated.
 * Whatever is left when the answer ends is evaluated before a next turn sent at once can start,
 * and at the end of a 2,000-token conversation each such token costs about 9 ms here (measured,
 * bench model, 2 threads); each ride step also costs about 20 ms of its own (a second pass, see
 * `due`). 32 left up to 65 tokens at the end (next turn at once: 1.6–1.9× the TTFT after a
 * pause); 16 gave 1.27× at 1.25 ms of extra pass per generated token; 8 gave no better (1.30×:
 * the answer's last word, the held tokens and the template's closing tokens are left either way)
 * for twice that.
 */
const RIDE_CHUNK = 16;

/** node-llama-cpp 3.21's native context, for the one copy its public API has no call for. */
interface NativeContext {
  saveSequenceStateToFile(filePath: string, sequenceId: number, tokens: Uint32Array): Promise<number>;
  removeTokenCellsFromSequence(sequenceId: number, startPos: number, endPos: number): boolean;
}

export interface AheadStats {
  /** Answers whose next-turn form was ready (or nearly) when they ended. */
  prepared: number;
  /** Preparations stopped because a request needed the spare sequence, the client left, or at shutdown. */
  abandoned: number;
  /** Prompt tokens copied from the answering sequence instead of evaluated. */
  copiedTokens: number;
  /** Tokens evaluated on spare sequences (the answer as the next turn sends it, and the template around it). */
  tokens: number;
}

export interface AheadHost {
  context: LlamaContext;
  model: LlamaModel;
  pool: SequencePool;
  batches: BatchScheduler;
  cache: ContextCache | null;
  stats: AheadStats;
  /** The prompt up to where the assistant's answer begins in next-turn form (see `LocalModel.nextTurnHead`). */
  head: Token[];
}

/**
 * Makes the next-turn form of an answer ready while the answer is generated, so that an agent or
 * tool loop that sends its next turn the moment the answer ends evaluates only its new message.
 *
 * The answering sequence holds the answer as generated (its reasoning, the sampled tokens); the
 * next turn sends it back as text without the reasoning, so the two part where the answer begins.
 * This keeps a second copy in the form the next turn will have: on an idle neighbouring sequence,
 * the prompt's KV cells are copied from the answering one once its prompt is evaluated (through a
 * state file on tmpfs: node-llama-cpp has no in-memory copy between sequences), then the answer's
 * text is tokenized as it streams and evaluated there, riding in the batches that decode the answer
 * (see BatchScheduler's "ride" mode). When the answer ends, the last few tokens and the template's
 * closing tokens are evaluated in one step, and the pool places the next turn on that sequence by
 * prefix match, as for any conversation.
 *
 * Cost: the spare sequence's previous content (only taken when it is empty or the disk cache can
 * keep what it held, which is saved first);
 * writing and reading the prompt's KV once (bytes per token × prompt tokens, under the context
 * lock, so decoding pauses for that long); and evaluating the answer once more, about one token
 * per step in batches that run anyway — the work the re-read after the answer would do, moved
 * earlier. Skipped when no neighbour is idle (or it holds a conversation and there is no disk cache)
 * or a request is waiting; a request that needs the
 * spare sequence stops it within one step, and the answer is then re-read after it ends as before.
 */
export class NextTurnAhead {
  private answer = "";
  private committed: Token[] = [];
  private committedChars = 0;
  private final: readonly Token[] | null = null;
  /** The client left or the service stops: the answer will not be sent back. */
  private stopped = false;
  private wake: (() => void) | null = null;
  private settling: Settling | null = null;
  /** Resolves when the work has ended and the spare sequence is back in the pool. */
  done: Promise<void> = Promise.resolve();
  /** True once the next-turn form is complete on the spare sequence. */
  ready = false;

  /** Still preparing (or done): neither stopped nor pushed aside by a request. */
  get alive(): boolean {
    return this.ready || (!this.stopped && !this.settling?.controller.signal.aborted);
  }

  private constructor(
    private readonly host: AheadHost,
    private readonly source: PooledSequence,
    private readonly promptTokens: readonly Token[],
  ) {}

  /**
   * Starts on an idle neighbour of `source`, whose prompt must be evaluated already (call it on the
   * first generated token); null when there is none or a request is waiting.
   */
  static start(host: AheadHost, source: PooledSequence, prompt: readonly Token[]): NextTurnAhead | null {
    const ahead = new NextTurnAhead(host, source, prompt);
    // A neighbour holding a conversation is only taken when the disk cache can keep that one.
    const canTake = (entry: PooledSequence) => entry.sequence.contextTokens.length === 0 || host.cache !== null;
    const running = host.pool.borrowNear(source, canTake, (entry, signal, settling) => ahead.work(entry, signal, settling));
    if (!running) return null;
    ahead.done = running;
    return ahead;
  }

  /** The answer's text so far (what the client has been sent as `content`). */
  update(answer: string): void {
    if (this.stopped || this.final || this.settling?.controller.signal.aborted) return;
    this.answer = answer;
    this.commit();
    this.poke();
  }

  /**
   * The answer ended: `target` is its exact next-turn form. Its last tokens are submitted at once
   * (before the caller hands out the end of the stream), so a next turn sent the moment the
   * client has the answer finds them in the batch already.
   */
  finish(target: readonly Token[]): void {
    if (this.stopped || this.settling?.controller.signal.aborted) return;
    this.final = target;
    if (this.settling) this.settling.target = target;
    this.poke();
  }

  /** The answer will not be sent back (the client left, an error): stop and free the spare sequence. */
  abandon(): void {
    this.settling?.controller.abort();
    this.stopped = true;
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Tokenizes what is new in the answer; commits the tokens later text can no longer change. */
  private commit(): void {
    const { model } = this.host;
    const tail = this.answer.slice(this.committedChars);
    // Everything before the last whitespace is split into words for good (byte-level BPE
    // pre-tokenizers start a word at its leading space).
    const boundary = Math.max(tail.lastIndexOf(" "), tail.lastIndexOf("\n"));
    if (boundary <= 0 && tail.length < LONG_TAIL_CHARS) return;
    const tokens = model.tokenize(tail, false);
    let take = 0;
    let chars = 0;
    for (let i = 0; i < tokens.length - HOLD_TOKENS; i++) {
      const piece = model.detokenize([tokens[i]!]);
      if (tail.length < LONG_TAIL_CHARS && chars + piece.length > boundary) break;
      chars += piece.length;
      take = i + 1;
    }
    if (take === 0) return;
    const taken = tokens.slice(0, take);
    const text = model.detokenize(taken);
    // Tokens that do not detokenize back to the text (a character split across tokens) wait.
    if (!tail.startsWith(text)) return;
    this.committed.push(...taken);
    this.committedChars += text.length;
  }

  private async work(entry: PooledSequence, signal: AbortSignal, settling: Settling): Promise<void> {
    this.settling = settling;
    const { batches, stats } = this.host;
    const sequence = entry.sequence;
    const leave = batches.backgroundWork(sequenceIdOf(sequence), "ride");
    const onAbort = () => {
      batches.hurry(sequenceIdOf(sequence));
      this.poke();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (!(await this.copyPrompt(sequence, settling))) return;
      while (!this.stopped) {
        const target = this.final ?? [...this.host.head, ...this.committed];
        const have = sequence.contextTokens;
        const keep = sharedPrefixLength(have, target);
        // A request that wants this sequence stops the work, except the answer's last small step:
        // the next turn would evaluate those very tokens itself, so it loses nothing by waiting
        // for it, and another conversation waits one small step at most.
        const lastStep = this.final !== null && target.length - keep <= FINAL_CHUNK;
        if (signal.aborted && !lastStep) break;
        if (keep < have.length) await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
        if (keep < target.length && this.due(target.length - keep)) {
          const chunk = target.slice(keep, keep + (lastStep ? FINAL_CHUNK : RIDE_CHUNK));
          await sequence.evaluateWithoutGeneratingNewTokens(chunk);
          stats.tokens += chunk.length;
          continue;
        }
        if (this.final) {
          this.ready = true;
          stats.prepared++;
          return;
        }
        if (signal.aborted) break;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      leave();
      if (!this.ready) {
        this.stopped = true;
        stats.abandoned++;
        // Half a form is still a prefix: whatever was evaluated stays usable for placement.
        settling.target = sequence.contextTokens.slice();
      }
    }
  }

  /**
   * Whether `backlog` tokens are worth a step now. While the answer is being generated, only a
   * whole RIDE_CHUNK: each sequence has its own KV stream, and llama.cpp's micro-batches take the
   * same number of tokens from every sequence in them (`split_equal`), so any tokens riding in a
   * step cost it a second pass; and on this CPU even one extra sequence's token in a step costs
   * most of a step. Riding a token or two every step (as the answer's words were committed) made a
   * 250-token answer decode at 19–24 tok/s instead of 34; a chunk every RIDE_CHUNK tokens is one
   * prompt-like evaluation, several times cheaper per token. Once the answer has ended (or nothing
   * else is generating), whatever is there.
   */
  private due(backlog: number): boolean {
    return this.final !== null || this.host.batches.liveGenerations === 0 || backlog >= RIDE_CHUNK;
  }

  /**
   * Copies the KV cells of the prompt's part shared with the next-turn form from the answering
   * sequence: saved to a tmpfs file and loaded into the spare one, then cut to that part.
   */
  private async copyPrompt(sequence: LlamaContextSequence, settling: Settling): Promise<boolean> {
    const { context, cache, head, stats } = this.host;
    const shared = sharedPrefixLength(this.promptTokens, head);
    if (shared === 0) return false;
    // What the spare sequence held may be a conversation someone comes back to.
    if (cache && sequence.contextTokens.length >= cache.minTokens) await cache.save(sequence);
    if (this.stopped) return false;
    const native = (context as unknown as { _ctx: NativeContext })._ctx;
    const file = path.join(scratchDir(), `sputnik-ahead-${process.pid}-${randomBytes(6).toString("hex")}.bin`);
    try {
      const saved = await withLock([context, "context"], async () => {
        // The answering sequence may have moved on since; what it had of the prompt is what counts.
        if (sharedPrefixLength(this.source.sequence.contextTokens, this.promptTokens) < shared) return false;
        await native.saveSequenceStateToFile(file, sequenceIdOf(this.source.sequence), Uint32Array.from(this.promptTokens.slice(0, shared)));
        return true;
      });
      if (!saved || this.stopped) return false;
      await sequence.loadStateFromFile(file, { acceptRisk: true });
      // The file held the answering sequence's cells past the prompt too (tokens being generated).
      await withLock([context, "context"], () => native.removeTokenCellsFromSequence(sequenceIdOf(sequence), shared, -1));
    } catch {
      // Nothing half-done may stay: the sequence starts empty and the answer is re-read after it ends.
      await sequence.clearHistory().catch(() => undefined);
      return false;
    } finally {
      fs.rm(file, { force: true }, () => undefined);
    }
    stats.copiedTokens += shared;
    settling.target = this.final ?? head;
    return !this.stopped;
  }
}

let scratch: string | null = null;

/** tmpfs where there is one: the copy never touches a disk. */
function scratchDir(): string {
  if (scratch) return scratch;
  try {
    fs.accessSync("/dev/shm", fs.constants.W_OK);
    scratch = "/dev/shm";
  } catch {
    scratch = os.tmpdir();
  }
  return scratch;
}

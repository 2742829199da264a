import type { EngineEvent, TokenLogprob } from "../engines/types.ts";
import type { ModerationChannel } from "./types.ts";
import { windowLength } from "./windows.ts";

/**
 * The output stage: a transform of a completion's event stream that releases the answer one
 * sentence-sized window at a time (src/moderation/windows.ts), each only after it was checked.
 *
 * - A window that passes (or only warns) is released as it is: the text a client receives is
 *   exactly the model's, just held back until its sentence is complete.
 * - A window that trips a withhold policy is never released. What was released before it stays
 *   released — it has been shown — and the stream ends there: `stop` ends the generation, later
 *   text (and its logprobs) is dropped, the usage of what was really generated still goes through
 *   (it is billed), and `done` says `content_filter`. Before any text went out, nothing but the
 *   notice is shown.
 * - Reasoning is checked like the answer (it is shown to users too) unless no policy checks it:
 *   then it passes straight through. The reasoning's last window is checked before the first
 *   answer text is released, so the order of the stream never changes.
 * - Tool calls are not text shown to a user: they pass through, after the text before them.
 * - Logprobs are held with their text and released just before it (token by token, by the length
 *   of their text), so a withheld window's tokens never leak through them.
 */
export interface OutputCheckOptions {
  /** Checks one window; resolves `withhold` when the answer must end before it. `offset`: characters of the channel released so far. */
  judge(channel: ModerationChannel, window: string, offset: number): Promise<"pass" | "withhold">;
  /** Whether any policy checks this channel (unchecked channels pass straight through). */
  checks(channel: ModerationChannel): boolean;
  /** Ends the generation (called once, when a withhold trips). */
  stop(): void;
}

interface Channel {
  /** Text received and not yet released (not yet checked). */
  held: string;
  /** Characters released. */
  shown: number;
  /** Logprobs of held text, and how many characters of released text their released tokens covered. */
  logprobs: TokenLogprob[];
  logprobChars: number;
}

export async function* checkOutput(source: AsyncIterable<EngineEvent>, options: OutputCheckOptions): AsyncGenerator<EngineEvent> {
  const channels: Record<ModerationChannel, Channel> = {
    reasoning: { held: "", shown: 0, logprobs: [], logprobChars: 0 },
    content: { held: "", shown: 0, logprobs: [], logprobChars: 0 },
  };
  let withheld = false;

  /** Logprobs whose tokens lie within the released text of `name` (all of them when `all`). */
  function takeLogprobs(name: ModerationChannel, all: boolean): EngineEvent | null {
    const channel = channels[name];
    let n = 0;
    while (n < channel.logprobs.length && (all || channel.logprobChars + channel.logprobs[n]!.token.length <= channel.shown)) {
      channel.logprobChars += channel.logprobs[n]!.token.length;
      n++;
    }
    if (n === 0) return null;
    return { type: "logprobs", channel: name, tokens: channel.logprobs.splice(0, n) };
  }

  /** Releases the complete windows of `name` (all that is held, when `final`), each after its check. */
  async function* release(name: ModerationChannel, final: boolean): AsyncGenerator<EngineEvent> {
    const channel = channels[name];
    while (!withheld) {
      const n = windowLength(channel.held, final);
      if (n === 0) break;
      const window = channel.held.slice(0, n);
      if ((await options.judge(name, window, channel.shown)) === "withhold") {
        withheld = true;
        for (const c of Object.values(channels)) {
          c.held = "";
          c.logprobs = [];
        }
        options.stop();
        return;
      }
      channel.held = channel.held.slice(n);
      channel.shown += n;
      const logprobs = takeLogprobs(name, false);
      if (logprobs) yield logprobs;
      yield { type: name, text: window };
    }
    if (final && !withheld) {
      const rest = takeLogprobs(name, true);
      if (rest) yield rest;
    }
  }

  async function* flush(): AsyncGenerator<EngineEvent> {
    yield* release("reasoning", true);
    yield* release("content", true);
  }

  let ended = false;
  try {
    for await (const event of source) {
      if (withheld) {
        // Ended by a withhold: only what the books and the end of the stream need goes on. An
        // engine that reports its stop as an error (a cancelled upstream) still ends it cleanly.
        if (event.type === "usage") yield event;
        else if (event.type === "done" || event.type === "error") {
          if (!ended) yield { type: "done", finishReason: "content_filter" };
          ended = true;
        }
        continue;
      }
      switch (event.type) {
        case "reasoning":
        case "content": {
          const name = event.type;
          if (!options.checks(name)) {
            if (name === "content") yield* release("reasoning", true);
            if (!withheld) yield event;
            break;
          }
          // The answer begins: the reasoning's last window is checked (and shown) first.
          if (name === "content") yield* release("reasoning", true);
          channels[name].held += event.text;
          yield* release(name, false);
          break;
        }
        case "logprobs":
          if (options.checks(event.channel)) channels[event.channel].logprobs.push(...event.tokens);
          else yield event;
          break;
        case "done":
          yield* flush();
          yield withheld ? { type: "done", finishReason: "content_filter" } : event;
          ended = true;
          break;
        default:
          // Tool calls, usage, errors: after the text that came before them.
          yield* flush();
          if (!withheld || event.type === "usage") yield event;
      }
    }
  } catch (error) {
    // After a withhold stopped it, the engine's failure is only the stop itself.
    if (!withheld) throw error;
  }
  // A source that ended without `done` (it failed, or was stopped) still releases what passes.
  yield* flush();
  if (withheld && !ended) yield { type: "done", finishReason: "content_filter" };
}

import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { LlamaContextSequence, Token } from "node-llama-cpp";
import { sharedPrefixLength } from "./sequencePool.ts";

/** Our own format tag: a file written by another program, or by an older Sputnik, is not ours. */
const FORMAT = "sputnik-kv/1";
/** llama.cpp's sequence state header: magic "ggsq", version 3, token count, tokens. */
const LLAMA_STATE_SEQ_MAGIC = 0x67677371;
const LLAMA_STATE_SEQ_VERSION = 3;

export interface ContextCacheOptions {
  /** Root folder; each model gets its own subfolder named after its file hash. */
  dir: string;
  /** SHA-256 of the model file: a state only ever loads into the model that wrote it. */
  modelHash: string;
  /** Total bytes of state files kept; least recently used entries go first. */
  maxBytes: number;
  /** Prefixes shorter than this are cheaper to recompute than to store. */
  minTokens: number;
  warn?: (message: string) => void;
}

interface EntryMeta {
  format: string;
  modelHash: string;
  tokens: number[];
  bytes: number;
  sha256: string;
  created: string;
}

export interface CacheEntry {
  readonly key: string;
  readonly tokens: readonly Token[];
  readonly bytes: number;
  readonly sha256: string;
  lastUsed: number;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  saves: number;
  loads: number;
  rejected: number;
}

/**
 * KV states of context sequences on disk, keyed by model file hash + token prefix, bounded in
 * size with LRU eviction. A state file is only handed to llama.cpp after our own checks pass
 * (format, model hash, size, SHA-256 of the whole file, llama.cpp's header and its tokens):
 * llama.cpp trusts the file it reads, and a damaged or foreign one could crash the process.
 * Anything that fails a check is deleted and the request simply computes the prefix.
 *
 * File operations are synchronous on purpose: they are small (metadata, one header, one hash)
 * and Sputnik runs libuv's thread pool with a single thread that is mostly busy with llama.cpp
 * decode jobs, so asynchronous ones would each wait behind a decode.
 */
export class ContextCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly counters = { saves: 0, loads: 0, rejected: 0 };

  private constructor(
    private readonly options: ContextCacheOptions,
    private readonly folder: string,
  ) {}

  static open(options: ContextCacheOptions): ContextCache {
    const folder = path.join(options.dir, options.modelHash.slice(0, 32));
    fs.mkdirSync(folder, { recursive: true });
    const cache = new ContextCache(options, folder);
    cache.scan();
    return cache;
  }

  get minTokens(): number {
    return this.options.minTokens;
  }

  stats(): CacheStats {
    let bytes = 0;
    for (const entry of this.entries.values()) bytes += entry.bytes;
    return { entries: this.entries.size, bytes, ...this.counters };
  }

  /** The entry sharing the longest prefix with `prompt` (at least `minTokens`), if any. */
  lookup(prompt: readonly Token[]): { entry: CacheEntry; shared: number } | null {
    let best: { entry: CacheEntry; shared: number } | null = null;
    for (const entry of this.entries.values()) {
      const shared = sharedPrefixLength(entry.tokens, prompt);
      if (shared >= this.options.minTokens && shared > (best?.shared ?? 0)) best = { entry, shared };
    }
    return best;
  }

  /** True when a stored entry already holds these tokens (or a continuation of them). */
  covers(tokens: readonly Token[]): boolean {
    for (const entry of this.entries.values()) {
      if (entry.tokens.length >= tokens.length && sharedPrefixLength(entry.tokens, tokens) === tokens.length) return true;
    }
    return false;
  }

  /** Writes the sequence's current state; returns the entry, or null when not worth it or failed. */
  async save(sequence: LlamaContextSequence): Promise<CacheEntry | null> {
    const tokens = sequence.contextTokens.slice();
    if (tokens.length < this.options.minTokens || this.covers(tokens)) return null;
    const key = keyOf(this.options.modelHash, tokens);
    const statePath = this.statePath(key);
    const temp = `${statePath}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await sequence.saveStateToFile(temp);
      const { size } = fs.statSync(temp);
      const sha256 = fileSha256(temp);
      const meta: EntryMeta = { format: FORMAT, modelHash: this.options.modelHash, tokens, bytes: size, sha256, created: new Date().toISOString() };
      // State first, then the meta that makes it an entry: a crash in between leaves an orphan
      // state file that the next scan removes, never a meta pointing at a half-written state.
      fs.renameSync(temp, statePath);
      writeFileAtomic(this.metaPath(key), JSON.stringify(meta));
      const entry: CacheEntry = { key, tokens, bytes: size, sha256, lastUsed: Date.now() };
      this.entries.set(key, entry);
      this.counters.saves++;
      this.evict(key);
      return this.entries.get(key) ?? null;
    } catch (error) {
      this.warn(`could not save a context state: ${(error as Error).message}`);
      fs.rmSync(temp, { force: true });
      return null;
    }
  }

  /**
   * Loads the entry into `sequence` after checking it; false (and the entry deleted) when the
   * file is missing, damaged, foreign or refused by llama.cpp. The sequence is left empty then.
   */
  async load(entry: CacheEntry, sequence: LlamaContextSequence): Promise<boolean> {
    const problem = this.verify(entry);
    if (problem) {
      this.reject(entry, problem);
      return false;
    }
    try {
      await sequence.loadStateFromFile(this.statePath(entry.key), { acceptRisk: true });
    } catch (error) {
      await sequence.clearHistory().catch(() => undefined);
      this.reject(entry, `llama.cpp refused it: ${(error as Error).message}`);
      return false;
    }
    if (sharedPrefixLength(sequence.contextTokens, entry.tokens) !== entry.tokens.length) {
      await sequence.clearHistory().catch(() => undefined);
      this.reject(entry, "the loaded tokens differ from the recorded ones");
      return false;
    }
    entry.lastUsed = Date.now();
    this.counters.loads++;
    // The file's mtime carries the LRU order across restarts.
    const now = new Date();
    try {
      fs.utimesSync(this.metaPath(entry.key), now, now);
    } catch {
      // the order is only a preference; a read-only cache still works
    }
    return true;
  }

  private verify(entry: CacheEntry): string | null {
    const file = this.statePath(entry.key);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return "its state file is missing";
    }
    if (size !== entry.bytes) return `its size is ${size} bytes, ${entry.bytes} were written`;
    const header = readHeader(file, entry.tokens.length);
    if (!header) return "it is not a llama.cpp sequence state";
    if (header.tokens.length !== entry.tokens.length || header.tokens.some((t, i) => t !== entry.tokens[i]))
      return "its tokens differ from the recorded ones";
    if (fileSha256(file) !== entry.sha256) return "its checksum does not match";
    return null;
  }

  private reject(entry: CacheEntry, why: string): void {
    this.counters.rejected++;
    this.warn(`ignoring context cache entry ${entry.key}: ${why}`);
    this.remove(entry.key);
  }

  private remove(key: string): void {
    this.entries.delete(key);
    fs.rmSync(this.metaPath(key), { force: true });
    fs.rmSync(this.statePath(key), { force: true });
  }

  /** Drops least recently used entries until the total fits; the entry just written goes last. */
  private evict(justWritten: string): void {
    let total = this.stats().bytes;
    const oldestFirst = [...this.entries.values()].filter((e) => e.key !== justWritten).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const entry of oldestFirst) {
      if (total <= this.options.maxBytes) break;
      total -= entry.bytes;
      this.remove(entry.key);
    }
    if (total > this.options.maxBytes && this.entries.has(justWritten)) this.remove(justWritten);
  }

  /** Indexes valid entries; removes leftovers (temp files, orphans, metas that are not ours). */
  private scan(): void {
    const names = fs.readdirSync(this.folder);
    const metas = new Set(names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5)));
    for (const name of names) {
      const stray = name.includes(".tmp-") || (name.endsWith(".kv") && !metas.has(name.slice(0, -3)));
      if (stray) fs.rmSync(path.join(this.folder, name), { force: true });
    }
    for (const key of metas) {
      const meta = readMeta(this.metaPath(key));
      const valid =
        meta !== null &&
        meta.format === FORMAT &&
        meta.modelHash === this.options.modelHash &&
        keyOf(this.options.modelHash, meta.tokens) === key;
      if (!valid) {
        this.counters.rejected++;
        this.warn(`ignoring context cache entry ${key}: not a ${FORMAT} entry of this model`);
        this.remove(key);
        continue;
      }
      const lastUsed = fs.statSync(this.metaPath(key), { throwIfNoEntry: false })?.mtimeMs ?? 0;
      this.entries.set(key, { key, tokens: meta.tokens as Token[], bytes: meta.bytes, sha256: meta.sha256, lastUsed });
    }
    this.evict("");
  }

  private statePath(key: string): string {
    return path.join(this.folder, `${key}.kv`);
  }

  private metaPath(key: string): string {
    return path.join(this.folder, `${key}.json`);
  }

  private warn(message: string): void {
    this.options.warn?.(message);
  }
}

function keyOf(modelHash: string, tokens: readonly number[]): string {
  const hash = createHash("sha256").update(modelHash);
  hash.update(new Uint8Array(Uint32Array.from(tokens).buffer));
  return hash.digest("hex").slice(0, 40);
}

function readMeta(file: string): EntryMeta | null {
  try {
    const value = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<EntryMeta>;
    const ok =
      typeof value.format === "string" &&
      typeof value.modelHash === "string" &&
      Array.isArray(value.tokens) &&
      value.tokens.every((t) => Number.isInteger(t) && t >= 0) &&
      Number.isInteger(value.bytes) &&
      typeof value.sha256 === "string";
    return ok ? (value as EntryMeta) : null;
  } catch {
    return null;
  }
}

function readHeader(file: string, expectedTokens: number): { tokens: number[] } | null {
  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(12 + expectedTokens * 4);
    const bytesRead = fs.readSync(fd, head, 0, head.length, 0);
    if (bytesRead < 12) return null;
    if (head.readUInt32LE(0) !== LLAMA_STATE_SEQ_MAGIC || head.readUInt32LE(4) !== LLAMA_STATE_SEQ_VERSION) return null;
    const count = head.readUInt32LE(8);
    if (count !== expectedTokens || bytesRead < 12 + count * 4) return null;
    const tokens: number[] = [];
    for (let i = 0; i < count; i++) tokens.push(head.readUInt32LE(12 + i * 4));
    return { tokens };
  } finally {
    fs.closeSync(fd);
  }
}

/** SHA-256 of a file, read synchronously in large chunks (see the class comment on why sync). */
export function fileSha256(file: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(4 << 20);
  const fd = fs.openSync(file, "r");
  try {
    let read: number;
    while ((read = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0) hash.update(buffer.subarray(0, read));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

function writeFileAtomic(file: string, text: string): void {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  fs.writeFileSync(temp, text);
  fs.renameSync(temp, file);
}

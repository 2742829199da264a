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
  /** True once the cache gave up on its folder (not a folder, unusable): requests compute prompts in full. */
  disabled: boolean;
}

/**
 * KV states of context sequences on disk, keyed by model file hash + token prefix, bounded in
 * size with LRU eviction. A state file is only handed to llama.cpp after our own checks pass
 * (format, model hash, size, SHA-256 of the whole file, llama.cpp's header and its tokens):
 * llama.cpp trusts the file it reads, and a damaged or foreign one could crash the process.
 * Anything that fails a check is deleted and the request simply computes the prefix.
 *
 * The cache is an optimisation, so no damage to it may fail a request or the start: a directory,
 * FIFO or unreadable file where an entry's file should be, a truncated file, or the folder itself
 * replaced by a file. The entry is dropped (its folder moved aside) with a warning; when the
 * configured root itself is not usable, the cache switches itself off until the next start.
 *
 * File operations are synchronous on purpose: they are small (metadata, one header, one hash)
 * and Sputnik runs libuv's thread pool with a single thread that is mostly busy with llama.cpp
 * decode jobs, so asynchronous ones would each wait behind a decode.
 */
export class ContextCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly counters = { saves: 0, loads: 0, rejected: 0 };
  private disabled = false;

  private constructor(
    private readonly options: ContextCacheOptions,
    private readonly folder: string,
  ) {}

  static open(options: ContextCacheOptions): ContextCache {
    const folder = path.join(options.dir, options.modelHash.slice(0, 32));
    const cache = new ContextCache(options, folder);
    if (cache.ensureFolder()) cache.scan();
    return cache;
  }

  get minTokens(): number {
    return this.options.minTokens;
  }

  stats(): CacheStats {
    let bytes = 0;
    for (const entry of this.entries.values()) bytes += entry.bytes;
    return { entries: this.entries.size, bytes, ...this.counters, disabled: this.disabled };
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
    if (this.disabled) return null;
    const tokens = sequence.contextTokens.slice();
    if (tokens.length < this.options.minTokens || this.covers(tokens)) return null;
    const key = keyOf(this.options.modelHash, tokens);
    const statePath = this.statePath(key);
    const temp = `${statePath}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      // Something that is not a file at the entry's paths (a directory, say) would make the renames
      // below fail every time; it is not ours to keep.
      this.clearNonFile(statePath);
      this.clearNonFile(this.metaPath(key));
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
      this.removePath(temp);
      // The folder itself may be what broke (deleted, or replaced by a file): set it up again.
      if (!isDirectory(this.folder)) {
        this.entries.clear();
        this.ensureFolder();
      }
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
    let fd: number;
    try {
      fd = openRegularFile(file);
    } catch (error) {
      return `its state file cannot be read (${(error as Error).message})`;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size !== entry.bytes) return `its size is ${size} bytes, ${entry.bytes} were written`;
      const header = readHeader(fd, entry.tokens.length);
      if (!header) return "it is not a llama.cpp sequence state";
      if (header.tokens.length !== entry.tokens.length || header.tokens.some((t, i) => t !== entry.tokens[i]))
        return "its tokens differ from the recorded ones";
      if (sha256OfFd(fd) !== entry.sha256) return "its checksum does not match";
      return null;
    } catch (error) {
      return `its state file cannot be read (${(error as Error).message})`;
    } finally {
      fs.closeSync(fd);
    }
  }

  private reject(entry: CacheEntry, why: string): void {
    this.counters.rejected++;
    this.warn(`ignoring context cache entry ${entry.key}: ${why}`);
    this.remove(entry.key);
  }

  private remove(key: string): void {
    this.entries.delete(key);
    this.removePath(this.metaPath(key));
    this.removePath(this.statePath(key));
  }

  /**
   * Deletes a path of this cache, whatever is there: a file, or a directory where a file belongs
   * (recursively: the path is one of our entry names, so nothing there is anyone else's). A failure
   * is only warned about: the cache works around what it cannot delete.
   */
  private removePath(file: string): void {
    try {
      fs.rmSync(file, { recursive: true, force: true });
    } catch (error) {
      this.warn(`could not delete ${file} from the context cache: ${(error as Error).message}`);
    }
  }

  private clearNonFile(file: string): void {
    const stat = fs.lstatSync(file, { throwIfNoEntry: false });
    if (stat && !stat.isFile()) {
      this.warn(`removing ${file} from the context cache: not a file`);
      this.removePath(file);
    }
  }

  /**
   * Makes sure the model's folder exists and is a folder. The model's own folder is ours: anything
   * else in its place is moved aside. The root is the operator's choice: when it is not a folder the
   * cache turns itself off rather than move what it did not create.
   */
  private ensureFolder(): boolean {
    const root = this.options.dir;
    try {
      const rootStat = fs.statSync(root, { throwIfNoEntry: false });
      if (rootStat && !rootStat.isDirectory()) return this.disable(`${root} is not a folder`);
      const own = fs.lstatSync(this.folder, { throwIfNoEntry: false });
      if (own && !isDirectory(this.folder)) {
        const aside = `${this.folder}.damaged-${Date.now()}`;
        fs.renameSync(this.folder, aside);
        this.warn(`context cache folder ${this.folder} was not a folder; moved it aside to ${aside}`);
      }
      fs.mkdirSync(this.folder, { recursive: true });
      fs.accessSync(this.folder, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
      return true;
    } catch (error) {
      return this.disable(`cannot use ${this.folder}: ${(error as Error).message}`);
    }
  }

  private disable(why: string): false {
    if (!this.disabled) this.warn(`context cache disabled until the next start: ${why}; prompts are computed in full`);
    this.disabled = true;
    this.entries.clear();
    return false;
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
    let names: string[];
    try {
      names = fs.readdirSync(this.folder);
    } catch (error) {
      this.disable(`cannot list ${this.folder}: ${(error as Error).message}`);
      return;
    }
    const metas = new Set(names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5)));
    for (const name of names) {
      const stray = name.includes(".tmp-") || (name.endsWith(".kv") && !metas.has(name.slice(0, -3)));
      if (stray) this.removePath(path.join(this.folder, name));
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
      // Only the cheap part of the load-time checks (the hash waits for a load): a state that is
      // missing, not a file or of the wrong size is dropped now rather than offered to requests.
      const state = fs.lstatSync(this.statePath(key), { throwIfNoEntry: false });
      const problem = !state ? "its state file is missing" : !state.isFile() ? "its state file is not a file" : state.size !== meta.bytes ? `its size is ${state.size} bytes, ${meta.bytes} were written` : null;
      const entry: CacheEntry = { key, tokens: meta.tokens as Token[], bytes: meta.bytes, sha256: meta.sha256, lastUsed: 0 };
      if (problem) {
        this.reject(entry, problem);
        continue;
      }
      entry.lastUsed = fs.lstatSync(this.metaPath(key), { throwIfNoEntry: false })?.mtimeMs ?? 0;
      this.entries.set(key, entry);
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
    const fd = openRegularFile(file);
    let text: string;
    try {
      text = fs.readFileSync(fd, "utf8");
    } finally {
      fs.closeSync(fd);
    }
    const value = JSON.parse(text) as Partial<EntryMeta>;
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

function readHeader(fd: number, expectedTokens: number): { tokens: number[] } | null {
  const head = Buffer.alloc(12 + expectedTokens * 4);
  const bytesRead = fs.readSync(fd, head, 0, head.length, 0);
  if (bytesRead < 12) return null;
  if (head.readUInt32LE(0) !== LLAMA_STATE_SEQ_MAGIC || head.readUInt32LE(4) !== LLAMA_STATE_SEQ_VERSION) return null;
  const count = head.readUInt32LE(8);
  if (count !== expectedTokens || bytesRead < 12 + count * 4) return null;
  const tokens: number[] = [];
  for (let i = 0; i < count; i++) tokens.push(head.readUInt32LE(12 + i * 4));
  return { tokens };
}

/**
 * Opens a file for reading only if it is a regular file. O_NONBLOCK because opening a FIFO for
 * reading would otherwise block the (synchronous) caller, and so the whole process, until a writer
 * came along; for a regular file it changes nothing.
 */
function openRegularFile(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new Error("not a regular file");
  }
  return fd;
}

function isDirectory(folder: string): boolean {
  try {
    return fs.statSync(folder).isDirectory();
  } catch {
    return false;
  }
}

/** SHA-256 of a file, read synchronously in large chunks (see the class comment on why sync). */
export function fileSha256(file: string): string {
  const fd = fs.openSync(file, "r");
  try {
    return sha256OfFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function sha256OfFd(fd: number): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(4 << 20);
  let read: number;
  let position = 0;
  while ((read = fs.readSync(fd, buffer, 0, buffer.length, position)) > 0) {
    hash.update(buffer.subarray(0, read));
    position += read;
  }
  return hash.digest("hex");
}

function writeFileAtomic(file: string, text: string): void {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  fs.writeFileSync(temp, text);
  fs.renameSync(temp, file);
}

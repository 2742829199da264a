/**
 * Reads one string from a GGUF file's metadata without parsing the rest: `ensureModel` checks a
 * generator stamp on every call, and the benchmark model's header alone is several megabytes.
 */
import { open, type FileHandle } from "node:fs/promises";

/** Scalar value sizes by GGUF value type (strings and arrays are variable). */
const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;

/**
 * The value of string key `key`, or undefined if the file has no such string key. Throws when
 * the file is missing or not GGUF.
 */
export async function readMetadataString(path: string, key: string): Promise<string | undefined> {
  const file = await open(path, "r");
  try {
    const r = new Reader(file);
    if ((await r.bytes(4)).toString("latin1") !== "GGUF") throw new Error(`${path} is not a GGUF file`);
    const version = await r.u32();
    if (version < 2) throw new Error(`${path}: unsupported GGUF version ${version}`);
    await r.u64(); // tensor count
    const count = await r.u64();
    for (let i = 0; i < count; i++) {
      const name = await r.string();
      const type = await r.u32();
      if (name === key && type === STRING) return await r.string();
      await skipValue(r, type);
    }
    return undefined;
  } finally {
    await file.close();
  }
}

async function skipValue(r: Reader, type: number): Promise<void> {
  if (type === STRING) return void (await r.skip(await r.u64()));
  if (type === ARRAY) {
    const itemType = await r.u32();
    const n = await r.u64();
    if (itemType in SCALAR_SIZE) return r.skip(n * SCALAR_SIZE[itemType]);
    for (let i = 0; i < n; i++) await skipValue(r, itemType);
    return;
  }
  if (!(type in SCALAR_SIZE)) throw new Error(`unknown GGUF value type ${type}`);
  await r.skip(SCALAR_SIZE[type]);
}

/** Sequential reader over a file handle, buffered in 64 KiB reads. */
class Reader {
  private buf = Buffer.alloc(0);
  private at = 0;
  private filePos = 0;

  constructor(private readonly file: FileHandle) {}

  private async fill(n: number): Promise<void> {
    if (this.buf.length - this.at >= n) return;
    const rest = this.buf.subarray(this.at);
    const chunk = Buffer.alloc(Math.max(n - rest.length, 1 << 16));
    const { bytesRead } = await this.file.read(chunk, 0, chunk.length, this.filePos);
    this.filePos += bytesRead;
    this.buf = Buffer.concat([rest, chunk.subarray(0, bytesRead)]);
    this.at = 0;
    if (this.buf.length < n) throw new Error("unexpected end of GGUF file");
  }

  async bytes(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  async u32(): Promise<number> {
    return (await this.bytes(4)).readUInt32LE(0);
  }

  async u64(): Promise<number> {
    const v = (await this.bytes(8)).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("GGUF length out of range");
    return Number(v);
  }

  async string(): Promise<string> {
    return (await this.bytes(await this.u64())).toString("utf8");
  }

  async skip(n: number): Promise<void> {
    const buffered = this.buf.length - this.at;
    if (n <= buffered) {
      this.at += n;
      return;
    }
    this.filePos += n - buffered;
    this.buf = Buffer.alloc(0);
    this.at = 0;
  }
}

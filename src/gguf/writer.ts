/**
 * A GGUF v3 writer: metadata key/values, tensor infos, then tensor data aligned to 32 bytes.
 *
 * No npm package writes GGUF tensors (`@huggingface/gguf` only parses), so Sputnik writes its own
 * test and benchmark models. Tensor data is produced lazily, chunk by chunk, and streamed to disk,
 * so a 500 MB benchmark model never sits in memory as one Buffer.
 */
import { open } from "node:fs/promises";
import { endianness } from "node:os";

export const GGUF_ALIGNMENT = 32;

/** ggml tensor types this writer can produce (values are ggml's enum). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
}

/** GGUF metadata value types (values are the GGUF spec's enum). */
enum ValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type ScalarKind = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "bool" | "string" | "u64" | "i64" | "f64";

const KIND_TO_TYPE: Record<ScalarKind, ValueType> = {
  u8: ValueType.UINT8,
  i8: ValueType.INT8,
  u16: ValueType.UINT16,
  i16: ValueType.INT16,
  u32: ValueType.UINT32,
  i32: ValueType.INT32,
  f32: ValueType.FLOAT32,
  bool: ValueType.BOOL,
  string: ValueType.STRING,
  u64: ValueType.UINT64,
  i64: ValueType.INT64,
  f64: ValueType.FLOAT64,
};

type Scalar = string | number | boolean | bigint;

type MetadataEntry =
  | { key: string; kind: ScalarKind; value: Scalar }
  | { key: string; kind: "array"; itemKind: ScalarKind; values: readonly Scalar[] };

/**
 * One tensor: its shape in ggml order (input dimension first, e.g. `[n_embd, n_vocab]` for
 * `token_embd.weight`) and a producer of its bytes, called once when the file is written.
 */
export interface TensorSpec {
  name: string;
  dims: readonly number[];
  type: GgmlType;
  /** Yields the tensor's bytes in order; their total must equal `tensorByteLength(dims, type)`. */
  data: () => Iterable<Uint8Array>;
}

export class GgufError extends Error {}

/** Bytes a tensor of this shape and type occupies. */
export function tensorByteLength(dims: readonly number[], type: GgmlType): number {
  const elements = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case GgmlType.F32:
      return elements * 4;
    case GgmlType.F16:
      return elements * 2;
    case GgmlType.Q8_0:
      if (dims[0] % Q8_0_BLOCK !== 0) throw new GgufError(`Q8_0 needs the first dimension to be a multiple of ${Q8_0_BLOCK}, got ${dims[0]}`);
      return (elements / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

export const Q8_0_BLOCK = 32;
/** One Q8_0 block: an f16 scale then 32 int8 quants. */
export const Q8_0_BLOCK_BYTES = 34;

/** Collects metadata and tensors, then writes a GGUF v3 file. */
export class GgufWriter {
  private readonly metadata: MetadataEntry[] = [];
  private readonly tensors: TensorSpec[] = [];
  private readonly keys = new Set<string>();
  private readonly tensorNames = new Set<string>();

  set(key: string, kind: ScalarKind, value: Scalar): this {
    this.claimKey(key);
    checkScalar(key, kind, value);
    this.metadata.push({ key, kind, value });
    return this;
  }

  setArray(key: string, itemKind: ScalarKind, values: readonly Scalar[]): this {
    this.claimKey(key);
    for (const value of values) checkScalar(key, itemKind, value);
    this.metadata.push({ key, kind: "array", itemKind, values });
    return this;
  }

  addTensor(tensor: TensorSpec): this {
    if (this.tensorNames.has(tensor.name)) throw new GgufError(`duplicate tensor ${tensor.name}`);
    if (tensor.dims.length < 1 || tensor.dims.length > 4 || tensor.dims.some((d) => !Number.isInteger(d) || d < 1))
      throw new GgufError(`tensor ${tensor.name} has invalid dims [${tensor.dims.join(", ")}]`);
    tensorByteLength(tensor.dims, tensor.type);
    this.tensorNames.add(tensor.name);
    this.tensors.push(tensor);
    return this;
  }

  /** Writes the whole file to `path` and returns its size in bytes. */
  async write(path: string): Promise<number> {
    const file = await open(path, "w");
    try {
      const out = new BufferedFile(file);
      for (const chunk of this.bytes()) await out.write(chunk);
      await out.flush();
      return out.position;
    } finally {
      await file.close();
    }
  }

  /** The file's bytes, in order, produced lazily (header first, then each tensor and its padding). */
  *bytes(): Generator<Uint8Array> {
    if (endianness() !== "LE") throw new GgufError("the GGUF writer supports little-endian hosts only");
    yield this.encodeHeader();
    for (const tensor of this.tensors) {
      const expected = tensorByteLength(tensor.dims, tensor.type);
      let produced = 0;
      for (const chunk of tensor.data()) {
        produced += chunk.byteLength;
        if (produced > expected) break;
        yield chunk;
      }
      if (produced !== expected) throw new GgufError(`tensor ${tensor.name} produced ${produced} bytes, expected ${expected}`);
      yield new Uint8Array(padding(expected));
    }
  }

  private claimKey(key: string): void {
    if (this.keys.has(key)) throw new GgufError(`duplicate metadata key ${key}`);
    this.keys.add(key);
  }

  private encodeHeader(): Uint8Array {
    const enc = new Encoder();
    enc.bytes(Buffer.from("GGUF", "ascii"));
    enc.u32(3);
    enc.u64(BigInt(this.tensors.length));
    enc.u64(BigInt(this.metadata.length));
    for (const entry of this.metadata) {
      enc.string(entry.key);
      if (entry.kind === "array") {
        enc.u32(ValueType.ARRAY);
        enc.u32(KIND_TO_TYPE[entry.itemKind]);
        enc.u64(BigInt(entry.values.length));
        for (const value of entry.values) enc.scalar(entry.itemKind, value);
      } else {
        enc.u32(KIND_TO_TYPE[entry.kind]);
        enc.scalar(entry.kind, entry.value);
      }
    }
    let offset = 0;
    for (const tensor of this.tensors) {
      enc.string(tensor.name);
      enc.u32(tensor.dims.length);
      for (const dim of tensor.dims) enc.u64(BigInt(dim));
      enc.u32(tensor.type);
      enc.u64(BigInt(offset));
      const size = tensorByteLength(tensor.dims, tensor.type);
      offset += size + padding(size);
    }
    enc.bytes(new Uint8Array(padding(enc.length)));
    return enc.finish();
  }
}

function padding(length: number): number {
  return (GGUF_ALIGNMENT - (length % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
}

function checkScalar(key: string, kind: ScalarKind, value: Scalar): void {
  const ok =
    kind === "string" ? typeof value === "string"
    : kind === "bool" ? typeof value === "boolean"
    : kind === "u64" || kind === "i64" ? typeof value === "bigint" || Number.isSafeInteger(value)
    : kind === "f32" || kind === "f64" ? typeof value === "number"
    : typeof value === "number" && Number.isInteger(value);
  if (!ok) throw new GgufError(`metadata ${key}: ${String(value)} is not a valid ${kind}`);
}

/** Growable little-endian byte encoder for the header. */
class Encoder {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.byteLength);
    this.buf.set(data, this.length);
    this.length += data.byteLength;
  }

  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }

  u64(v: bigint): void {
    this.reserve(8);
    this.buf.writeBigUInt64LE(v, this.length);
    this.length += 8;
  }

  string(s: string): void {
    const data = Buffer.from(s, "utf8");
    this.u64(BigInt(data.byteLength));
    this.bytes(data);
  }

  scalar(kind: ScalarKind, v: Scalar): void {
    switch (kind) {
      case "string":
        return this.string(v as string);
      case "bool":
        this.reserve(1);
        this.buf.writeUInt8(v ? 1 : 0, this.length);
        this.length += 1;
        return;
      case "u8":
        this.reserve(1);
        this.buf.writeUInt8(v as number, this.length);
        this.length += 1;
        return;
      case "i8":
        this.reserve(1);
        this.buf.writeInt8(v as number, this.length);
        this.length += 1;
        return;
      case "u16":
        this.reserve(2);
        this.buf.writeUInt16LE(v as number, this.length);
        this.length += 2;
        return;
      case "i16":
        this.reserve(2);
        this.buf.writeInt16LE(v as number, this.length);
        this.length += 2;
        return;
      case "u32":
        return this.u32(v as number);
      case "i32":
        this.reserve(4);
        this.buf.writeInt32LE(v as number, this.length);
        this.length += 4;
        return;
      case "f32":
        this.reserve(4);
        this.buf.writeFloatLE(v as number, this.length);
        this.length += 4;
        return;
      case "u64":
        return this.u64(BigInt(v as number | bigint));
      case "i64":
        this.reserve(8);
        this.buf.writeBigInt64LE(BigInt(v as number | bigint), this.length);
        this.length += 8;
        return;
      case "f64":
        this.reserve(8);
        this.buf.writeDoubleLE(v as number, this.length);
        this.length += 8;
        return;
    }
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Coalesces small chunks into large sequential writes. */
class BufferedFile {
  private readonly buf = Buffer.alloc(4 << 20);
  private used = 0;
  position = 0;

  constructor(private readonly file: import("node:fs/promises").FileHandle) {}

  async write(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.byteLength) {
      const n = Math.min(this.buf.length - this.used, data.byteLength - offset);
      this.buf.set(data.subarray(offset, offset + n), this.used);
      this.used += n;
      offset += n;
      if (this.used === this.buf.length) await this.flush();
    }
  }

  async flush(): Promise<void> {
    let done = 0;
    while (done < this.used) {
      const { bytesWritten } = await this.file.write(this.buf, done, this.used - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
    this.used = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor encodings

/** Raw little-endian bytes of an F32 tensor. */
export function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half-precision bits of a number, rounded to nearest even (as ggml's converter does). */
export function toF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half += 1; // may carry into the exponent: correct
  return sign | half;
}

/** The number an IEEE half-precision bit pattern stands for. */
export function fromF16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Half-precision bytes of an F16 tensor. */
export function f16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toF16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

/** Q8_0 bytes (as ggml's reference quantizer): per 32 values an f16 scale amax/127, then int8 round(x/scale). */
export function q8_0Bytes(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) throw new GgufError(`Q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${values.length}`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = Buffer.alloc(blocks * Q8_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(values[b * Q8_0_BLOCK + i]));
    const d = Math.fround(amax / 127);
    const id = d ? 1 / d : 0;
    const at = b * Q8_0_BLOCK_BYTES;
    out.writeUInt16LE(toF16Bits(d), at);
    for (let i = 0; i < Q8_0_BLOCK; i++) out.writeInt8(roundHalfAway(Math.fround(values[b * Q8_0_BLOCK + i] * id)), at + 2 + i);
  }
  return out;
}

/** C's roundf: halves round away from zero (Math.round rounds them up). */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

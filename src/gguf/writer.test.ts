import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { readGgufFileInfo } from "node-llama-cpp";
import { readMetadataString } from "./header.ts";
import { f16Bytes, f32Bytes, fromF16Bits, GgmlType, GgufError, GgufWriter, q8_0Bytes, toF16Bits } from "./writer.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sputnik-gguf-writer-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ramp(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.37) * scale));
}

/** A file with every kind of metadata value and all three tensor types (odd sizes force padding). */
function sampleWriter(): { writer: GgufWriter; f32: Float32Array; f16: Float32Array; q8: Float32Array } {
  const f32 = ramp(3 * 5);
  const f16 = ramp(7, 3);
  const q8 = ramp(64 * 2, 2);
  const writer = new GgufWriter()
    .set("general.architecture", "string", "llama")
    .set("test.u8", "u8", 200)
    .set("test.i8", "i8", -100)
    .set("test.u16", "u16", 60000)
    .set("test.i16", "i16", -30000)
    .set("test.u32", "u32", 4_000_000_000)
    .set("test.i32", "i32", -2_000_000_000)
    .set("test.f32", "f32", 1.5)
    .set("test.bool", "bool", true)
    .set("test.u64", "u64", 2n ** 40n)
    .set("test.i64", "i64", -(2n ** 40n))
    .set("test.f64", "f64", Math.PI)
    .set("test.unicode", "string", "<｜User｜> 你好 🚀")
    .setArray("test.strings", "string", ["a", "", "Ġb", "<｜end▁of▁sentence｜>"])
    .setArray("test.ints", "i32", [1, -2, 3])
    .setArray("test.floats", "f32", [0.5, -0.25])
    .addTensor({ name: "a.weight", dims: [3, 5], type: GgmlType.F32, data: () => [f32Bytes(f32)] })
    .addTensor({ name: "b.weight", dims: [7], type: GgmlType.F16, data: () => [f16Bytes(f16)] })
    .addTensor({ name: "c.weight", dims: [64, 2], type: GgmlType.Q8_0, data: () => [q8_0Bytes(q8)] });
  return { writer, f32, f16, q8 };
}

describe("GgufWriter", () => {
  it("writes a file that @huggingface/gguf parses back exactly", async () => {
    const { writer, f32, f16, q8 } = sampleWriter();
    const file = path.join(dir, "sample.gguf");
    const size = await writer.write(file);
    const bytes = await readFile(file);
    assert.equal(bytes.length, size);

    const parsed = await gguf(file, { allowLocalFile: true });
    const m = parsed.metadata as unknown as Record<string, unknown>;
    assert.equal(m.version, 3);
    assert.equal(m.tensor_count, 3n);
    assert.equal(m["general.architecture"], "llama");
    assert.equal(m["test.u8"], 200);
    assert.equal(m["test.i8"], -100);
    assert.equal(m["test.u16"], 60000);
    assert.equal(m["test.i16"], -30000);
    assert.equal(m["test.u32"], 4_000_000_000);
    assert.equal(m["test.i32"], -2_000_000_000);
    assert.equal(m["test.f32"], 1.5);
    assert.equal(m["test.bool"], true);
    assert.equal(m["test.u64"], 2n ** 40n);
    assert.equal(m["test.i64"], -(2n ** 40n));
    assert.equal(m["test.f64"], Math.PI);
    assert.equal(m["test.unicode"], "<｜User｜> 你好 🚀");
    assert.deepEqual(m["test.strings"], ["a", "", "Ġb", "<｜end▁of▁sentence｜>"]);
    assert.deepEqual(m["test.ints"], [1, -2, 3]);
    assert.deepEqual(m["test.floats"], [0.5, -0.25]);

    assert.deepEqual(
      parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype]),
      [
        ["a.weight", [3, 5], GGMLQuantizationType.F32],
        ["b.weight", [7], GGMLQuantizationType.F16],
        ["c.weight", [64, 2], GGMLQuantizationType.Q8_0],
      ],
    );
    const base = Number(parsed.tensorDataOffset);
    assert.equal(base % 32, 0);
    for (const t of parsed.tensorInfos) assert.equal(Number(t.offset) % 32, 0, `${t.name} is aligned`);

    // Tensor data round-trips: F32 exactly, F16 within half precision, Q8_0 within one quant step.
    const at = (name: string) => base + Number(parsed.tensorInfos.find((t) => t.name === name)!.offset);
    const a = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at("a.weight"), bytes.byteOffset + at("a.weight") + 60));
    assert.deepEqual([...a], [...f32]);
    for (let i = 0; i < f16.length; i++) {
      const back = fromF16Bits(bytes.readUInt16LE(at("b.weight") + 2 * i));
      assert.ok(Math.abs(back - f16[i]) <= Math.abs(f16[i]) / 1024 + 1e-7, `f16[${i}]`);
    }
    for (let block = 0; block < 4; block++) {
      const offset = at("c.weight") + block * 34;
      const d = fromF16Bits(bytes.readUInt16LE(offset));
      for (let i = 0; i < 32; i++) {
        const back = d * bytes.readInt8(offset + 2 + i);
        assert.ok(Math.abs(back - q8[block * 32 + i]) <= d / 2 + 1e-3, `q8[${block * 32 + i}]`);
      }
    }
    assert.equal(bytes.length, at("c.weight") + 160, "last tensor (136 bytes) padded to 32 bytes");
  });

  it("writes a file that node-llama-cpp's readGgufFileInfo parses", async () => {
    const file = path.join(dir, "sample-nlc.gguf");
    await sampleWriter().writer.write(file);
    const info = await readGgufFileInfo(file, { readTensorInfo: true });
    assert.equal(info.version, 3);
    assert.equal(info.metadata.general.architecture, "llama");
    assert.equal((info.metadata as unknown as { test: { unicode: string } }).test.unicode, "<｜User｜> 你好 🚀");
    assert.deepEqual(
      info.fullTensorInfo?.map((t) => [t.name, t.dimensions.map(Number)]),
      [
        ["a.weight", [3, 5]],
        ["b.weight", [7]],
        ["c.weight", [64, 2]],
      ],
    );
  });

  it("reads one metadata string back without parsing the rest", async () => {
    const file = path.join(dir, "sample-header.gguf");
    await sampleWriter().writer.write(file);
    assert.equal(await readMetadataString(file, "test.unicode"), "<｜User｜> 你好 🚀");
    assert.equal(await readMetadataString(file, "test.missing"), undefined);
    assert.equal(await readMetadataString(file, "test.u32"), undefined, "not a string key");
    await assert.rejects(readMetadataString(path.join(dir, "missing.gguf"), "x"));
  });

  it("produces the same bytes from the same input", () => {
    const digest = (w: GgufWriter) => Buffer.concat([...w.bytes()]).toString("hex");
    assert.equal(digest(sampleWriter().writer), digest(sampleWriter().writer));
  });

  it("rejects malformed input with clear errors", async () => {
    const w = new GgufWriter().set("a", "u32", 1);
    assert.throws(() => w.set("a", "u32", 2), /duplicate metadata key a/);
    assert.throws(() => w.set("b", "u32", 1.5), /not a valid u32/);
    assert.throws(() => w.set("c", "string", 3), /not a valid string/);
    assert.throws(() => w.addTensor({ name: "t", dims: [0], type: GgmlType.F32, data: () => [] }), /invalid dims/);
    assert.throws(() => w.addTensor({ name: "t", dims: [33], type: GgmlType.Q8_0, data: () => [] }), /multiple of 32/);
    w.addTensor({ name: "short", dims: [4], type: GgmlType.F32, data: () => [new Uint8Array(8)] });
    assert.throws(() => w.addTensor({ name: "short", dims: [4], type: GgmlType.F32, data: () => [] }), /duplicate tensor/);
    await assert.rejects(w.write(path.join(dir, "bad.gguf")), (e: unknown) => e instanceof GgufError && /produced 8 bytes, expected 16/.test(e.message));
  });

  it("converts to half precision like ggml (round to nearest even, subnormals, overflow)", () => {
    assert.equal(toF16Bits(1), 0x3c00);
    assert.equal(toF16Bits(-2), 0xc000);
    assert.equal(toF16Bits(65504), 0x7bff);
    assert.equal(toF16Bits(1e6), 0x7c00);
    assert.equal(toF16Bits(2 ** -24), 0x0001);
    assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00, "tie rounds to even");
    assert.equal(toF16Bits(1 + 3 * 2 ** -11), 0x3c02, "tie rounds to even (up)");
    assert.equal(fromF16Bits(toF16Bits(0.1)), 0.0999755859375);
  });
});

/**
 * Extraction of real files made here: a PDF (pdf-lib), a DOCX (docx), an HTML page with its
 * furniture — each under a misleading name and declared type — and hostile ones: a PDF bomb, a
 * deeply nested PDF and HTML page, a zip bomb DOCX, an oversized file, unknown binary.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import zlib from "node:zlib";
import { Document, HeadingLevel, ImageRun, Packer, Paragraph } from "docx";
import { PDFDocument, PDFName, StandardFonts } from "pdf-lib";
import { isServiceError, type ServiceError } from "../../errors.ts";
import { chunkText } from "./chunk.ts";
import { extractDocument } from "./extract.ts";

const KNOWN = "The beacon on page two transmits at twenty megahertz.";

async function threePagePdf(): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  pdf.setTitle("Satellite notes");
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  const lines = [["Page one introduces the mission."], ["Page two has the details.", KNOWN], ["Page three concludes."]];
  for (const pageLines of lines) {
    const page = pdf.addPage();
    pageLines.forEach((line, i) => page.drawText(line, { x: 50, y: 700 - i * 20, font, size: 12 }));
  }
  return pdf.save();
}

/** zlib (`deflate: false` → raw deflate) of `megabytes` MB of spaces, made a megabyte at a time. */
async function compressedSpaces(megabytes: number, raw = false): Promise<Buffer> {
  const stream = raw ? zlib.createDeflateRaw({ level: 9 }) : zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  stream.on("data", (part: Buffer) => parts.push(part));
  const ended = new Promise((resolve) => stream.on("end", resolve));
  const megabyte = Buffer.alloc(1024 * 1024, 0x20);
  for (let i = 0; i < megabytes; i++) stream.write(megabyte);
  stream.end();
  await ended;
  return Buffer.concat(parts);
}

/** A one-page PDF whose content stream is a FlateDecode stream that inflates to `megabytes` MB. */
async function pdfBomb(megabytes: number): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const page = pdf.addPage();
  const stream = pdf.context.stream(await compressedSpaces(megabytes), { Filter: "FlateDecode" });
  page.node.set(PDFName.of("Contents"), pdf.context.register(stream));
  return pdf.save();
}

/** A PDF written by hand with `extra` inside its page dictionary (pdf-lib would not nest absurdly). */
function handWrittenPdf(extra: string): Uint8Array {
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Extra ${extra} >>`,
    "<< /Length 44 >>\nstream\nBT /F1 12 Tf 72 712 Td (Hello deep) Tj ET\nendstream",
  ];
  let out = "%PDF-1.7\n";
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(out);
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isServiceError(error), `a ServiceError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a refusal");
}

const encode = (text: string) => new TextEncoder().encode(text);

test("a PDF named .txt is read as a PDF: its pages' text, the known sentence on page 2, a chunk that points at it", async () => {
  const doc = await extractDocument(await threePagePdf(), { filename: "notes.txt", declaredMime: "text/plain" });
  assert.equal(doc.kind, "pdf");
  assert.equal(doc.mime, "application/pdf");
  assert.equal(doc.title, "Satellite notes");
  assert.equal(doc.truncated, false);
  assert.ok(doc.text.includes(KNOWN), doc.text);
  assert.ok(doc.text.indexOf("Page one") < doc.text.indexOf(KNOWN) && doc.text.indexOf(KNOWN) < doc.text.indexOf("Page three"));
  const at = doc.text.indexOf(KNOWN);
  const chunk = chunkText(doc.text).find((c) => c.start <= at && at + KNOWN.length <= c.end)!;
  assert.ok(doc.text.slice(chunk.start, chunk.end).includes(KNOWN));
});

test("a DOCX keeps its headings as # lines, which the chunker keeps", async () => {
  const body = (n: number) => `Paragraph ${n} of the report describes the telemetry in enough words to be a real paragraph.`;
  const docx = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: "Mission report", heading: HeadingLevel.HEADING_1 }),
          new Paragraph(body(1)),
          new Paragraph({ text: "Telemetry", heading: HeadingLevel.HEADING_2 }),
          new Paragraph(body(2)),
          new Paragraph(body(3)),
        ],
      },
    ],
  });
  const doc = await extractDocument(await Packer.toBuffer(docx), { filename: "report.pdf", declaredMime: "application/pdf" });
  assert.equal(doc.kind, "docx");
  assert.equal(doc.title, "Mission report");
  assert.equal(doc.text, `# Mission report\n\n${body(1)}\n\n## Telemetry\n\n${body(2)}\n\n${body(3)}`);
  assert.deepEqual(
    chunkText(doc.text).map((c) => c.heading),
    ["Mission report", "Telemetry"],
  );
});

test("an HTML page named .pdf is read as HTML: the article, not the menu or footer", async () => {
  const paragraph = (n: number) =>
    `<p>Paragraph ${n}: the satellite circled the Earth every ninety-six minutes, and its radio beep could be heard by amateurs around the world.</p>`;
  const page = `<!DOCTYPE html><html><head><title>First satellite</title></head><body>
    <nav><a href="/">Home</a> <a href="/shop">Shop our merchandise</a></nav>
    <article><h1>First satellite</h1>${paragraph(1)}${paragraph(2)}<h2>Orbit</h2>${paragraph(3)}${paragraph(4)}</article>
    <footer>Copyright notice and privacy policy</footer></body></html>`;
  const doc = await extractDocument(encode(page), { filename: "page.pdf", declaredMime: "application/pdf" });
  assert.equal(doc.kind, "html");
  assert.equal(doc.title, "First satellite");
  for (const n of [1, 2, 3, 4]) assert.ok(doc.text.includes(`Paragraph ${n}: the satellite`));
  assert.ok(!doc.text.includes("Shop our merchandise") && !doc.text.includes("privacy policy"), doc.text);
  assert.match(doc.text, /^#+ Orbit$/m);
});

test("text and Markdown are sniffed from content, whatever the name says", async () => {
  const text = await extractDocument(encode("Just some notes.\r\nSecond line."), { filename: "scan.pdf", declaredMime: "application/pdf" });
  assert.deepEqual(text, { mime: "text/plain", kind: "text", title: null, text: "Just some notes.\nSecond line.", truncated: false });
  const markdown = await extractDocument(encode("# Plan\n\nFirst, [read](https://example.com) this.\n"), { filename: "plan.docx" });
  assert.equal(markdown.kind, "markdown");
  assert.equal(markdown.title, "Plan");
  const bom = await extractDocument(new Uint8Array([0xef, 0xbb, 0xbf, ...encode("with a byte order mark")]));
  assert.equal(bom.text, "with a byte order mark");
  // Not UTF-8 but plainly text: an older Western file (Windows-1252).
  const latin = await extractDocument(new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80, 0x35]));
  assert.equal(latin.text, "café €5");
});

test("unknown binary, images and non-DOCX zips are refused with a clear error; empty files too", async () => {
  for (const bytes of [randomBytes(4096), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...randomBytes(64)]), encode("binary\u0000inside")]) {
    const error = await refusal(extractDocument(bytes, { filename: "notes.txt", declaredMime: "text/plain" }));
    assert.equal(error.kind, "unsupported_media_type");
    assert.equal(error.code, "unsupported_file_type");
    assert.match(error.message, /not supported.*Supported: plain text, Markdown, HTML, PDF and DOCX/);
  }
  const empty = await refusal(extractDocument(new Uint8Array(0)));
  assert.equal(empty.code, "file_empty");
});

test("an oversized file is refused before it is parsed", async () => {
  // A hostile PDF over the byte limit: refused at once, never handed to a worker (which would take
  // 30 s to time out on it).
  const bytes = handWrittenPdf("[".repeat(2000) + "]".repeat(2000));
  const error = await refusal(extractDocument(bytes, { limits: { maxBytes: 1024 } }));
  assert.equal(error.kind, "too_large");
  assert.equal(error.code, "file_too_large");
  assert.match(error.message, /over the limit of 0\.0 MB/);
});

test("a PDF bomb fails cleanly within the memory bound; the process stays healthy and reads the next PDF", async () => {
  const bomb = await pdfBomb(320); // ~320 KB that inflate to 320 MB
  assert.ok(bomb.length < 1024 * 1024);
  const heapBefore = process.memoryUsage().heapUsed;
  const error = await refusal(extractDocument(bomb, { limits: { maxMemoryMb: 160, timeoutMs: 20_000 } }));
  assert.equal(error.kind, "unprocessable");
  assert.equal(error.code, "document_too_complex");
  assert.match(error.message, /^The PDF could not be read within the limits: reading it (needed more than|took longer)/);
  // The inflating happened in the worker, now gone: this thread's heap did not take it.
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, "main heap grew by less than 64 MB");
  const next = await extractDocument(await threePagePdf());
  assert.ok(next.text.includes(KNOWN));
});

test("absurd nesting fails cleanly (PDF) or is read without stalling (HTML); a slow page meets the timeout", async () => {
  const deep = await refusal(extractDocument(handWrittenPdf("[".repeat(200_000) + "]".repeat(200_000))));
  assert.equal(deep.code, "document_unreadable");
  assert.equal(deep.message, "The PDF is nested too deeply to read.");
  // linkedom's parsing time grows steeply with nesting: 100,000 levels take many seconds.
  const page = `<html><body>${"<div>".repeat(100_000)}deep${"</div>".repeat(100_000)}</body></html>`;
  const slow = await refusal(extractDocument(encode(page), { limits: { timeoutMs: 500 } }));
  assert.equal(slow.code, "document_too_complex");
  assert.match(slow.message, /^The HTML page could not be read within the limits: reading it took longer than 0\.5 s\.$/);
});

test("a DOCX that unpacks past the bound (zip bomb) is refused from its zip directory", async () => {
  const docx = new Document({
    sections: [
      {
        children: [
          new Paragraph("A small document with a large picture."),
          // 3 MB of zeros: a few kilobytes in the zip.
          new Paragraph({ children: [new ImageRun({ type: "png", data: new Uint8Array(3 * 1024 * 1024), transformation: { width: 10, height: 10 } })] }),
        ],
      },
    ],
  });
  const bytes = await Packer.toBuffer(docx);
  assert.ok(bytes.length < 512 * 1024);
  const error = await refusal(extractDocument(bytes, { limits: { maxUnpackedBytes: 2 * 1024 * 1024 } }));
  assert.equal(error.kind, "too_large");
  assert.equal(error.code, "document_unpacks_too_large");
  assert.match(error.message, /^The DOCX unpacks to 3\.\d MB, over the limit of 2\.0 MB\.$/);
  // Within the bound it reads, the picture ignored.
  const doc = await extractDocument(bytes);
  assert.equal(doc.text, "A small document with a large picture.");
});

test("the text is capped at maxChars and says so", async () => {
  const doc = await extractDocument(await threePagePdf(), { limits: { maxChars: 30 } });
  assert.equal(doc.truncated, true);
  assert.equal(doc.text.length, 30);
  const text = await extractDocument(encode("x".repeat(100)), { limits: { maxChars: 10 } });
  assert.deepEqual([text.text, text.truncated], ["x".repeat(10), true]);
});

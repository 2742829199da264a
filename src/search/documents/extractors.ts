/**
 * The heavy extractors — PDF (unpdf, i.e. pdf.js), DOCX (mammoth) and HTML (Readability) — as they
 * run inside the extraction worker (extractWorker.mjs). Nothing here bounds time or memory: the
 * worker's resource limits, its timeout and the memory watch in extract.ts do. What this file does
 * bound is its output (`maxChars`), so a huge text is never built or posted back whole.
 *
 * Each format's library is imported only when a file of that format comes (the worker loads it
 * before it says ready): a worker that reads a PDF never loads mammoth or linkedom.
 */
import { zipDeclaredSizes } from "./zipGuard.ts";

export interface ExtractionJob {
  kind: "pdf" | "docx" | "html";
  /** The file (pdf, docx). */
  bytes?: Uint8Array;
  /** The decoded page (html). */
  text?: string;
  maxChars: number;
  /** The most a DOCX's entries may declare uncompressed, together. */
  maxUnpackedBytes: number;
}

export interface ExtractionOutput {
  title: string | null;
  text: string;
  truncated: boolean;
}

/** A refusal with a stable code, posted back to extract.ts, which turns it into a ServiceError. */
export class ExtractionRefusal extends Error {
  constructor(
    readonly refusal: "unreadable" | "encrypted" | "too_large_unpacked",
    message: string,
  ) {
    super(message);
  }
}

export type Extractor = (job: ExtractionJob) => Promise<ExtractionOutput>;

/** The extractor of one format, its library loaded. */
export async function loadExtractor(kind: ExtractionJob["kind"]): Promise<Extractor> {
  switch (kind) {
    case "pdf": {
      const { getDocumentProxy } = await import("unpdf");
      return (job) => extractPdf(getDocumentProxy, job.bytes!, job.maxChars);
    }
    case "docx": {
      const [{ default: mammoth }, { htmlFragmentToMarkdownish }] = await Promise.all([import("mammoth"), import("./html.ts")]);
      return (job) => extractDocx(mammoth, htmlFragmentToMarkdownish, job.bytes!, job.maxChars, job.maxUnpackedBytes);
    }
    case "html": {
      const { extractHtmlMainText } = await import("./html.ts");
      return async (job) => {
        const { title, text } = extractHtmlMainText(job.text ?? "");
        return { title, ...capped(text, job.maxChars) };
      };
    }
  }
}

async function extractPdf(getDocumentProxy: typeof import("unpdf").getDocumentProxy, bytes: Uint8Array, maxChars: number): Promise<ExtractionOutput> {
  let pdf;
  try {
    pdf = await getDocumentProxy(bytes, {
      // No code from the file is ever compiled (pdf.js's eval path for fonts), no fonts installed,
      // no warnings on the server's stderr.
      isEvalSupported: false,
      disableFontFace: true,
      useSystemFonts: false,
      verbosity: 0,
    });
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "PasswordException") throw new ExtractionRefusal("encrypted", "The PDF is password-protected.");
    throw unreadable("PDF", error);
  }
  try {
    const info = ((await pdf.getMetadata().catch(() => null))?.info ?? {}) as { Title?: unknown };
    const title = typeof info.Title === "string" && info.Title.trim() ? info.Title.trim() : null;
    const pages: string[] = [];
    let length = -2;
    for (let number = 1; number <= pdf.numPages; number++) {
      const page = await pdf.getPage(number);
      const content = await page.getTextContent();
      let text = "";
      for (const item of content.items) {
        if ("str" in item) text += item.str + (item.hasEOL ? "\n" : "");
      }
      page.cleanup();
      text = text.replace(/[ \t]+\n/g, "\n").trim();
      if (!text) continue;
      pages.push(text);
      length += text.length + 2;
      // Each page is a block of its own; past the cap the remaining pages are not even read.
      if (length > maxChars) break;
    }
    return { title, ...capped(pages.join("\n\n"), maxChars) };
  } catch (error) {
    throw unreadable("PDF", error);
  } finally {
    await pdf.destroy().catch(() => {});
  }
}

async function extractDocx(
  mammoth: typeof import("mammoth"),
  htmlFragmentToMarkdownish: typeof import("./html.ts").htmlFragmentToMarkdownish,
  bytes: Uint8Array, maxChars: number, maxUnpackedBytes: number): Promise<ExtractionOutput> {
  const sizes = zipDeclaredSizes(bytes);
  if ("error" in sizes) throw new ExtractionRefusal("unreadable", `The DOCX could not be read: ${sizes.error}.`);
  if (sizes.uncompressedBytes > maxUnpackedBytes) {
    throw new ExtractionRefusal(
      "too_large_unpacked",
      `The DOCX unpacks to ${mb(sizes.uncompressedBytes)} MB, over the limit of ${mb(maxUnpackedBytes)} MB.`,
    );
  }
  let html: string;
  try {
    const result = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      // Images carry no text: never read (inflated) or inlined as base64.
      { convertImage: mammoth.images.imgElement(async () => ({ src: "" })) },
    );
    html = result.value;
  } catch (error) {
    throw unreadable("DOCX", error);
  }
  const text = htmlFragmentToMarkdownish(html);
  const heading = /^#{1,6} (.+)$/m.exec(text);
  return { title: heading ? heading[1]!.trim() : null, ...capped(text, maxChars) };
}

function capped(text: string, maxChars: number): { text: string; truncated: boolean } {
  if (text.length <= maxChars) return { text, truncated: false };
  // Never cut a surrogate pair in half.
  let end = maxChars;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return { text: text.slice(0, end), truncated: true };
}

function unreadable(what: string, error: unknown): ExtractionRefusal {
  // A stack overflow (absurd nesting) is the file's fault, and said so.
  if (/maximum call stack/i.test(messageOf(error))) return new ExtractionRefusal("unreadable", `The ${what} is nested too deeply to read.`);
  return new ExtractionRefusal("unreadable", `The ${what} could not be read: ${messageOf(error)}.`);
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, " ").slice(0, 200).replace(/\.$/, "");
}

function mb(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0);
}

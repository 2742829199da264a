/**
 * What an uploaded file really is, decided from its bytes alone. The name and the declared type are
 * the uploader's claims: a `.txt` that holds a PDF is read as a PDF, a `.pdf` that holds text as
 * text, and bytes that are neither one of our formats nor text are refused.
 *
 * Binary formats come from file-type (magic numbers, and for DOCX the zip's entries); text formats
 * have no magic number, so they are told apart by what the text looks like.
 */
import { fileTypeFromBuffer } from "file-type";
import { ServiceError } from "../../errors.ts";

export type DocumentKind = "text" | "markdown" | "html" | "pdf" | "docx";

export interface SniffedDocument {
  kind: DocumentKind;
  mime: string;
  /** For the text kinds: the decoded text (UTF-8 or a UTF-16 with its byte order mark). */
  text?: string;
}

const DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** Windows-1252's 0x80–0x9F; the five it leaves undefined stay C1 controls (and mark binary). */
const CP1252_80_9F = "€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ";

/** How much of a text file the html/markdown heuristics look at: the tell-tale marks come early. */
const HEAD_CHARS = 8192;

export async function sniffDocument(bytes: Uint8Array): Promise<SniffedDocument> {
  if (bytes.length === 0) {
    throw new ServiceError("invalid_request", "The file is empty.", { code: "file_empty", param: "file" });
  }
  const detected = await fileTypeFromBuffer(bytes);
  if (detected?.mime === "application/pdf") return { kind: "pdf", mime: "application/pdf" };
  if (detected?.mime === DOCX_MIME) return { kind: "docx", mime: DOCX_MIME };
  // XML is the one text format file-type names; an XHTML page starts with `<?xml` too.
  if (detected && detected.mime !== "application/xml") {
    throw unsupported(`its content is ${detected.mime} (.${detected.ext})`);
  }
  const text = decodeText(bytes);
  if (text === null) throw unsupported("its content is neither a supported document nor text");
  const head = text.slice(0, HEAD_CHARS);
  if (looksLikeHtml(head)) return { kind: "html", mime: "text/html", text };
  if (detected) throw unsupported("its content is XML");
  if (looksLikeMarkdown(head)) return { kind: "markdown", mime: "text/markdown", text };
  return { kind: "text", mime: "text/plain", text };
}

function unsupported(why: string): ServiceError {
  return new ServiceError(
    "unsupported_media_type",
    `This file type is not supported: ${why}. Supported: plain text, Markdown, HTML, PDF and DOCX.`,
    { code: "unsupported_file_type", param: "file" },
  );
}

/**
 * The text of bytes that are text, or null. UTF-16 only with its byte order mark (without one it
 * cannot be told from binary); otherwise UTF-8, or — when the bytes are not valid UTF-8 — the
 * Windows-1252 of older Western text files. Either way no control characters (C0 beyond whitespace,
 * form feed and escape; C1): those mark a binary format file-type does not know.
 */
function decodeText(bytes: Uint8Array): string | null {
  let text: string;
  try {
    if (bytes[0] === 0xff && bytes[1] === 0xfe) text = new TextDecoder("utf-16le", { fatal: true }).decode(bytes.subarray(2));
    else if (bytes[0] === 0xfe && bytes[1] === 0xff) text = new TextDecoder("utf-16be", { fatal: true }).decode(bytes.subarray(2));
    else text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    if (bytes[0] === 0xff || bytes[0] === 0xfe) return null;
    // Node 20's "windows-1252" decoder is ISO-8859-1's (0x80–0x9F come out as C1 controls):
    // the 27 characters Windows-1252 puts there are mapped here.
    text = new TextDecoder("latin1").decode(bytes).replace(/[\u0080-\u009f]/g, (c) => CP1252_80_9F[c.charCodeAt(0) - 0x80]!);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000e-\u001a\u001c-\u001f\u007f-\u009f]/.test(text)) return null;
  return text;
}

function looksLikeHtml(head: string): boolean {
  // A document that opens as HTML (after an optional XML prolog and comments)...
  if (/^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]/i.test(head)) return true;
  // ...or a fragment whose markup is plainly HTML's structure.
  return /<(html|head|body)[\s>]/i.test(head) && /<\/(p|div|body|html|title)>/i.test(head);
}

function looksLikeMarkdown(head: string): boolean {
  const marks = [
    /^#{1,6}[ \t]+\S/m, // ATX heading
    /^\S.*\n(=+|-+)[ \t]*$/m, // setext heading
    /^(```|~~~)/m, // fenced code
    /\[[^\]\n]+\]\([^)\s]+\)/, // link
    /^[ \t]*[-*+][ \t]+\S[\s\S]*^[ \t]*[-*+][ \t]+\S/m, // a list of at least two items
    /\*\*[^*\n]+\*\*/, // strong emphasis
  ];
  return marks.some((mark) => mark.test(head));
}

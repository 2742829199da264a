import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Serving an uploaded file back (`GET /v1/files/:id/content`, `GET /api/files/:id/content`): only
 * ever as a download. Whatever the bytes are (HTML, SVG, a PDF with scripts), the browser is told
 * they are opaque (`application/octet-stream`, `nosniff`), to save them (`attachment`), and, should
 * it render them anyway, to run nothing (a sandboxing CSP). The user's name for the file goes in
 * the header encoded, so no name (quotes, CR/LF, `../`, 1,000 characters) can shape the header.
 */
export function sendFileContent(reply: FastifyReply, file: { filename: string }, bytes: Uint8Array): FastifyReply {
  return reply
    .header("content-type", "application/octet-stream")
    .header("content-disposition", contentDisposition(file.filename))
    .header("x-content-type-options", "nosniff")
    .header("content-security-policy", "default-src 'none'; sandbox")
    .header("cache-control", "private, no-store")
    .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<RFC 8187 encoding>`. */
export function contentDisposition(name: string): string {
  const display = downloadName(name);
  const fallback = display.replace(/[^\x20-\x7e]/g, "_").replace(/["\\%]/g, "_");
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeRfc8187(display)}`;
}

/**
 * The name a download is offered under: the last path segment of what was uploaded (a browser
 * would strip the rest anyway), without control characters, a leading dot or a trailing dot or
 * space, at most 200 characters (the extension kept); "file" when nothing is left.
 */
export function downloadName(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? "";
  let cleaned = last
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, "")
    .replace(/[<>:"|?*]/g, "_")
    .trim()
    .replace(/^\.+/, "")
    .replace(/[. ]+$/, "");
  const chars = Array.from(cleaned);
  if (chars.length > 200) {
    const dot = cleaned.lastIndexOf(".");
    const extension = dot > 0 && cleaned.length - dot <= 16 ? Array.from(cleaned.slice(dot)) : [];
    cleaned = chars.slice(0, 200 - extension.length).join("") + extension.join("");
  }
  return cleaned === "" ? "file" : cleaned;
}

function encodeRfc8187(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The `:id` of a file route, or null when it cannot be a file id (the policy then answers 404). */
export function fileIdParam(request: FastifyRequest): string | null {
  const id = (request.params as { id?: unknown }).id;
  return typeof id === "string" && /^file-[A-Za-z0-9_-]{1,100}$/.test(id) ? id : null;
}

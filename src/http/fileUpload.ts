import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ServiceError } from "../errors.ts";

/**
 * Multipart uploads (`POST /v1/files`, `POST /api/files`): one file, a few short text fields, the
 * file read into memory up to `maxFileBytes` and not one byte further. A file over the bound
 * answers 413 as soon as the bound is crossed, and the connection is closed after the answer
 * rather than kept to drain the rest of the upload.
 */

const MAX_FIELDS = 8;
const MAX_FIELD_BYTES = 1024;

/** Registers the multipart parser once (both file routes use it). */
export async function registerMultipart(app: FastifyInstance): Promise<void> {
  if (app.hasDecorator("multipartErrors")) return;
  await app.register(multipart, { limits: { files: 1, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES, parts: MAX_FIELDS + 1, headerPairs: 64 } });
}

export interface UploadedPart {
  /** The name the client sent (a label only); "" when it sent none. */
  filename: string;
  /** What the client claimed the type to be; never trusted. */
  declaredMime: string;
  bytes: Uint8Array;
}

export interface ReadUpload {
  /** The part named `file`; null when there was none. */
  file: UploadedPart | null;
  /** The other fields (first value of each). */
  fields: Record<string, string>;
}

/**
 * Runs a check that may refuse the upload before its body is read; a refusal closes the connection
 * after the answer, so a client that keeps sending a large body is not read to its end for nothing.
 */
export async function beforeBody<T>(reply: FastifyReply, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    reply.header("connection", "close");
    throw error;
  }
}

/** The declared body length, when the client sent one (chunked uploads have none). */
export function declaredLength(request: FastifyRequest): number | null {
  const header = request.headers["content-length"];
  if (header === undefined) return null;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

export async function readUpload(request: FastifyRequest, reply: FastifyReply, opts: { maxFileBytes: number; tooLarge: () => ServiceError }): Promise<ReadUpload> {
  if (!request.isMultipart()) {
    throw new ServiceError("unsupported_media_type", "Send the file as multipart/form-data with a 'file' field.", { code: "unsupported_media_type", param: "file" });
  }
  const fields: Record<string, string> = {};
  let file: UploadedPart | null = null;
  try {
    // throwFileSizeLimit is read at run time but missing from the types of parts()' options.
    const options = { limits: { fileSize: opts.maxFileBytes }, throwFileSizeLimit: false } as Parameters<FastifyRequest["parts"]>[0];
    for await (const part of request.parts(options)) {
      if (part.type === "field") {
        if (part.valueTruncated) throw new ServiceError("invalid_request", `The field '${part.fieldname}' is too long.`, { code: "invalid_parameter", param: part.fieldname });
        if (!(part.fieldname in fields) && typeof part.value === "string") fields[part.fieldname] = part.value;
        continue;
      }
      if (part.fieldname !== "file" || file !== null) {
        part.file.resume();
        throw new ServiceError("invalid_request", `Unexpected file field '${part.fieldname}': send one file in the field 'file'.`, { code: "invalid_parameter", param: part.fieldname });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of part.file as AsyncIterable<Buffer>) {
        // busboy stops at fileSize and marks the stream truncated: the file is over the bound.
        if (part.file.truncated) throw opts.tooLarge();
        size += chunk.length;
        if (size > opts.maxFileBytes) throw opts.tooLarge();
        chunks.push(chunk);
      }
      if (part.file.truncated) throw opts.tooLarge();
      file = { filename: part.filename ?? "", declaredMime: part.mimetype ?? "", bytes: new Uint8Array(Buffer.concat(chunks, size)) };
    }
  } catch (error) {
    // Whatever is left of the body is not worth reading: answer and hang up.
    reply.header("connection", "close");
    throw translate(error, opts.tooLarge);
  }
  return { file, fields };
}

/** @fastify/multipart's own errors (limits, malformed bodies) in the API's terms. */
function translate(error: unknown, tooLarge: () => ServiceError): unknown {
  if (error instanceof ServiceError) return error;
  const code = (error as { code?: string } | null)?.code;
  if (code === "FST_REQ_FILE_TOO_LARGE") return tooLarge();
  if (code === "FST_PARTS_LIMIT" || code === "FST_FILES_LIMIT" || code === "FST_FIELDS_LIMIT") {
    return new ServiceError("invalid_request", "Too many parts: send one file in the field 'file' and at most a few short fields.", { code: "invalid_parameter", param: "file" });
  }
  if (code === "FST_PROTO_VIOLATION" || code === "FST_INVALID_MULTIPART_CONTENT_TYPE") {
    return new ServiceError("invalid_request", "The multipart body is not valid.", { code: "invalid_multipart" });
  }
  if (error instanceof Error && /multipart|boundary|Part terminated|Unexpected end/i.test(error.message)) {
    return new ServiceError("invalid_request", `The multipart body is not valid: ${error.message}.`, { code: "invalid_multipart" });
  }
  return error;
}

import type { StoredFile } from "../search/store/files.ts";
import { isoTime } from "./time.ts";

/**
 * Uploaded documents as the two APIs show them. Never the owner, the hash or the bytes: only what
 * the uploader needs to follow indexing and to pick files for a question.
 */

/** A file on /v1/files, in OpenAI's shape (`created_at` in seconds). */
export interface OpenAIFileView {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  /** OpenAI's (deprecated but still read) status: `uploaded` is never shown, indexing is `processing`. */
  status: "processing" | "processed" | "error";
  /** Why processing failed; null otherwise. */
  status_details: string | null;
}

export function presentOpenAIFile(file: StoredFile): OpenAIFileView {
  return {
    id: file.id,
    object: "file",
    bytes: file.bytes,
    created_at: Math.floor(file.created_at / 1000),
    filename: file.filename,
    purpose: file.purpose,
    status: file.status,
    status_details: file.status === "error" ? file.error : null,
  };
}

export function presentOpenAIFileList(files: StoredFile[]): { object: "list"; data: OpenAIFileView[]; has_more: false } {
  return { object: "list", data: files.map(presentOpenAIFile), has_more: false };
}

export function presentOpenAIFileDeleted(id: string): { id: string; object: "file"; deleted: true } {
  return { id, object: "file", deleted: true };
}

/** A file in the web app's API (`/api/files`): progress for the attach chip, ISO time. */
export interface AppFileView {
  id: string;
  filename: string;
  bytes: number;
  mime: string;
  status: "processing" | "processed" | "error";
  error: string | null;
  chunks_indexed: number;
  chunks_total: number | null;
  created_at: string;
}

export function presentAppFile(file: StoredFile): AppFileView {
  return {
    id: file.id,
    filename: file.filename,
    bytes: file.bytes,
    mime: file.mime,
    status: file.status,
    error: file.status === "error" ? file.error : null,
    chunks_indexed: file.chunks_indexed,
    chunks_total: file.chunks_total,
    created_at: isoTime(file.created_at),
  };
}

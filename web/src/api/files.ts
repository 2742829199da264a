/**
 * The web app's files API (src/http/app/files.ts): documents a conversation's answers may read.
 * Uploads go as multipart (field `file`), so they do not pass through `api()`'s JSON body; the
 * CSRF header and the error handling are the same.
 */
import { csrfHeaders } from "./csrf.ts";
import { api, NetworkError, toApiError } from "./http.ts";

export type FileStatus = "processing" | "processed" | "error";

/** One uploaded document as the app API presents it. */
export interface UploadedFile {
  id: string;
  filename: string;
  bytes: number;
  mime: string;
  status: FileStatus;
  error: string | null;
  chunks_indexed: number;
  chunks_total: number | null;
  created_at: string | number;
}

/** The documents the pickers offer (the server sniffs the content; this only filters the picker). */
export const DOCUMENT_ACCEPT =
  ".txt,.md,.markdown,.html,.htm,.pdf,.docx,text/plain,text/markdown,text/html,application/pdf,application/vnd.openxmlformats-officedocument.wordprocessingml.document";

const path = (id: string) => `/api/files/${encodeURIComponent(id)}`;

export async function uploadFile(file: File, conversationId: string | null, signal?: AbortSignal): Promise<UploadedFile> {
  const form = new FormData();
  if (conversationId) form.append("conversation_id", conversationId);
  // The file goes last: the server may read the fields before it streams the file.
  form.append("file", file, file.name);
  let response: Response;
  try {
    response = await fetch("/api/files", {
      method: "POST",
      // No content-type: the browser sets multipart/form-data with its boundary.
      headers: { accept: "application/json", ...csrfHeaders() },
      body: form,
      credentials: "same-origin",
      cache: "no-store",
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new NetworkError(error);
  }
  if (!response.ok) throw await toApiError(response);
  return (await response.json()) as UploadedFile;
}

/** The user's documents, newest first (the personal library: web/src/pages/DocumentsPage.tsx). */
export const listFiles = () => api<{ data: UploadedFile[] }>("GET", "/api/files");
export const getFile = (id: string) => api<UploadedFile>("GET", path(id));
export const deleteFile = (id: string) => api<void>("DELETE", path(id));
/** Served as an attachment (a download), never shown inline. */
export const fileContentUrl = (id: string) => `${path(id)}/content`;

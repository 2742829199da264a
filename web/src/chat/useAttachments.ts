import { useCallback, useEffect, useRef, useState } from "react";
import { deleteFile, getFile, uploadFile, type UploadedFile } from "../api/files.ts";
import { describeError } from "../api/http.ts";

/**
 * The documents attached to the next message: each is uploaded at once (POST /api/files), then
 * polled (GET /api/files/:id) while the server indexes it, and its id goes with the next send.
 * The chat may start before indexing ends: the answer then reads what is indexed so far.
 */
export interface Attachment {
  /** This page's key for the chip (the file has no id until its upload ends). */
  key: string;
  name: string;
  state: "uploading" | "processing" | "processed" | "error";
  file: UploadedFile | null;
  error: string | null;
  /** Taken from the library (the Documents page): removing the chip leaves the file stored. */
  fromLibrary?: boolean;
}

/** Files per message: a chip row, not a library (the library is the files API). */
export const MAX_ATTACHMENTS = 10;
const POLL_MS = 1000;

let counter = 0;

export function useAttachments(conversationId: string | null) {
  const [attachments, setAttachments] = useState<Attachment[]>([]);
  /** Bumped after each poll round: the next round is scheduled even when nothing visible changed. */
  const [tick, setTick] = useState(0);
  const uploads = useRef(new Map<string, AbortController>());
  const conversationRef = useRef(conversationId);
  conversationRef.current = conversationId;

  const patch = useCallback((key: string, change: Partial<Attachment>) => {
    setAttachments((list) => list.map((a) => (a.key === key ? { ...a, ...change } : a)));
  }, []);

  const add = useCallback(
    (files: File[]) => {
      const room = Math.max(0, MAX_ATTACHMENTS - attachments.length);
      for (const file of files.slice(0, room)) {
        const key = `attachment-${++counter}`;
        const abort = new AbortController();
        uploads.current.set(key, abort);
        setAttachments((list) => [...list, { key, name: file.name, state: "uploading", file: null, error: null }]);
        uploadFile(file, conversationRef.current, abort.signal)
          .then((uploaded) => patch(key, { state: uploaded.status, file: uploaded, error: uploaded.error }))
          .catch((error) => {
            if ((error as Error).name !== "AbortError") patch(key, { state: "error", error: describeError(error) });
          })
          .finally(() => uploads.current.delete(key));
      }
    },
    [attachments.length, patch],
  );

  /** Files already stored (picked in the library): chips at once, polled like uploads while still indexing. */
  const adopt = useCallback((files: UploadedFile[]) => {
    if (files.length === 0) return;
    setAttachments((list) => {
      const fresh = files.filter((f) => !list.some((a) => a.file?.id === f.id)).slice(0, Math.max(0, MAX_ATTACHMENTS - list.length));
      return [...list, ...fresh.map((file) => ({ key: `attachment-${++counter}`, name: file.filename, state: file.status, file, error: file.error, fromLibrary: true }))];
    });
  }, []);

  /**
   * Takes a chip away; an upload on its way is cancelled, a file uploaded for this message deleted
   * (nothing else uses it yet). A library file stays: the library keeps it for other chats.
   */
  const remove = useCallback((key: string) => {
    uploads.current.get(key)?.abort();
    setAttachments((list) => {
      const gone = list.find((a) => a.key === key);
      if (gone?.file && !gone.fromLibrary) void deleteFile(gone.file.id).catch(() => undefined);
      return list.filter((a) => a.key !== key);
    });
  }, []);

  /** What the last send took: back as chips if the server did not take that message after all. */
  const taken = useRef<Attachment[]>([]);

  /** The ids to send with a message, and the chips cleared: they belong to that message now. */
  const take = useCallback((): string[] => {
    const kept = attachments.filter((a) => a.file && a.state !== "error");
    taken.current = kept;
    setAttachments([]);
    return kept.map((a) => a.file!.id);
  }, [attachments]);

  /** The last send was refused (its text goes back to the composer): so do its documents. */
  const restore = useCallback(() => {
    const back = taken.current;
    taken.current = [];
    if (back.length > 0) setAttachments((list) => [...back.filter((b) => !list.some((a) => a.key === b.key)), ...list]);
  }, []);

  // Indexing progress: poll the files still being indexed, once a second, until each is done or failed.
  const indexing = attachments.filter((a) => a.state === "processing" && a.file).map((a) => a.file!.id);
  const key = indexing.join(",");
  useEffect(() => {
    if (key === "") return;
    let live = true;
    const timer = window.setTimeout(() => {
      void Promise.all(
        key.split(",").map((id) =>
          getFile(id).then(
            (file) => live && setAttachments((list) => list.map((a) => (a.file?.id === id ? { ...a, file, state: file.status, error: file.error } : a))),
            // A failed poll (offline, a restart) tries again at the next tick; a file gone is an error.
            (error) => live && (error as { status?: number }).status === 404 && setAttachments((list) => list.map((a) => (a.file?.id === id ? { ...a, state: "error", error: describeError(error) } : a))),
          ),
        ),
      ).finally(() => live && setTick((t) => t + 1));
    }, POLL_MS);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [key, tick]);

  const busy = attachments.some((a) => a.state === "uploading");
  return { attachments, add, adopt, remove, take, restore, busy };
}

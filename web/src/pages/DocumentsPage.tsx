import { useEffect, useRef, useState, type DragEvent } from "react";
import { api, describeError } from "../api/http.ts";
import { deleteFile, DOCUMENT_ACCEPT, fileContentUrl, listFiles, uploadFile, type UploadedFile } from "../api/files.ts";
import { planFeatures } from "../api/planFeatures.ts";
import { offerToChat } from "../chat/libraryHandoff.ts";
import { DataTable } from "../components/DataTable.tsx";
import { PageLayout } from "../components/PageLayout.tsx";
import { formatTime } from "../components/time.ts";
import { useRemoteList } from "../components/useRemoteList.ts";
import { navigate } from "../router.tsx";

/**
 * The personal library (issue 15: "attach to a conversation, or to a personal library"): the
 * user's documents (GET /api/files) with their indexing, upload (button or drop, the composer's
 * upload call), download, delete, and "Use in chat", which hands a file to the chat's composer as
 * an attachment chip (chat/libraryHandoff.ts).
 */

/** While some file is being indexed, the list is read again this often (the server reports progress). */
const POLL_MS = 1000;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A readable type for the list (the server's sniffed MIME type). */
function kindOf(mime: string): string {
  if (mime === "application/pdf") return "PDF";
  if (mime.includes("wordprocessingml")) return "Word";
  if (mime === "text/markdown") return "Markdown";
  if (mime === "text/html") return "HTML";
  if (mime.startsWith("text/")) return "Text";
  return mime;
}

interface Upload {
  key: string;
  name: string;
  error: string | null;
}

let counter = 0;

export function DocumentsPage() {
  const files = useRemoteList(listFiles, []);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [quota, setQuota] = useState<number | null>(null);
  const [canUpload, setCanUpload] = useState(true);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);

  useEffect(() => {
    let live = true;
    void planFeatures().then((f) => live && setCanUpload(f?.has("documents") ?? true));
    // The plan's storage quota, when it sets one (otherwise the server's default applies, not shown here).
    api<{ plan?: { stored_bytes_quota?: number | null } }>("GET", "/api/billing/summary").then(
      (s) => live && setQuota(s.plan?.stored_bytes_quota ?? null),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);

  // Indexing progress: read the list again while some file is still being indexed.
  const indexing = files.items?.some((f) => f.status === "processing") ?? false;
  const { reload } = files;
  useEffect(() => {
    if (!indexing) return;
    const timer = window.setTimeout(reload, POLL_MS);
    return () => window.clearTimeout(timer);
  }, [indexing, files.items, reload]);

  const upload = (picked: File[]) => {
    for (const file of picked) {
      const key = `upload-${++counter}`;
      setUploads((list) => [...list, { key, name: file.name, error: null }]);
      uploadFile(file, null)
        .then(() => {
          setUploads((list) => list.filter((u) => u.key !== key));
          reload();
        })
        .catch((error) => setUploads((list) => list.map((u) => (u.key === key ? { ...u, error: describeError(error) } : u))));
    }
  };

  const onDragOver = (event: DragEvent<HTMLElement>) => {
    if (!canUpload || !event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    setDragging(true);
  };
  const onDrop = (event: DragEvent<HTMLElement>) => {
    setDragging(false);
    const picked = [...(event.dataTransfer?.files ?? [])];
    if (!canUpload || picked.length === 0) return;
    event.preventDefault();
    upload(picked);
  };

  const remove = (id: string) => {
    setConfirm(null);
    void files.change(() => deleteFile(id));
  };
  const toChat = (file: UploadedFile) => navigate(offerToChat(file));

  const used = (files.items ?? []).reduce((n, f) => n + f.bytes, 0);

  return (
    <PageLayout title="Documents">
      <p className="muted">Documents you keep here can be read by any of your chats: use one in a chat, and the answer reads it and cites it.</p>
      <section
        className={`card documents-drop ${dragging ? "documents-drop-active" : ""}`}
        onDragOver={onDragOver}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        data-testid="documents-drop"
      >
        <div className="row">
          <button type="button" className="btn-primary" disabled={!canUpload} onClick={() => picker.current?.click()} data-testid="documents-upload">
            Upload files
          </button>
          <span className="muted small">{canUpload ? "or drop them here: txt, md, html, pdf, docx" : "Your plan does not include documents."}</span>
          <span className="spacer" />
          {files.items ? (
            <span className="small" data-testid="documents-storage">
              {quota !== null ? `${formatBytes(used)} of ${formatBytes(quota)} used` : `${formatBytes(used)} in ${files.items.length} ${files.items.length === 1 ? "file" : "files"}`}
            </span>
          ) : null}
        </div>
        {quota !== null && quota > 0 ? <progress className="documents-quota" max={quota} value={Math.min(used, quota)} aria-label="Storage used" /> : null}
        <input
          ref={picker}
          type="file"
          multiple
          accept={DOCUMENT_ACCEPT}
          hidden
          tabIndex={-1}
          data-testid="documents-input"
          onChange={(e) => {
            const picked = [...(e.currentTarget.files ?? [])];
            e.currentTarget.value = "";
            if (picked.length > 0) upload(picked);
          }}
        />
        {uploads.length > 0 ? (
          <ul className="documents-uploads" aria-label="Uploads">
            {uploads.map((u) => (
              <li key={u.key} data-testid="documents-uploading">
                {u.name}: {u.error ? <span className="error-text" role="alert">{u.error}</span> : "uploading…"}
                {u.error ? (
                  <button type="button" className="btn-ghost btn-small" aria-label={`Dismiss ${u.name}`} onClick={() => setUploads((list) => list.filter((x) => x.key !== u.key))}>
                    ×
                  </button>
                ) : null}
              </li>
            ))}
          </ul>
        ) : null}
      </section>
      <section className="card">
        <h2>Your documents</h2>
        <DataTable
          list={files}
          empty="No documents yet."
          testId="documents-table"
          columns={["Name", "Size", "Type", "Status", "Uploaded", ""]}
          row={(f) => (
            <tr key={f.id} data-testid="document-row" data-status={f.status}>
              <td>
                {/* The server sends it as an attachment: a download, never shown inline. */}
                <a href={fileContentUrl(f.id)} download={f.filename} data-testid="document-download">
                  {f.filename}
                </a>
              </td>
              <td>{formatBytes(f.bytes)}</td>
              <td>{kindOf(f.mime)}</td>
              <td data-testid="document-status">
                <Status file={f} />
              </td>
              <td>{formatTime(typeof f.created_at === "number" ? new Date(f.created_at).toISOString() : f.created_at)}</td>
              <td className="documents-actions">
                {confirm === f.id ? (
                  <>
                    <button type="button" className="btn-danger btn-small" onClick={() => remove(f.id)}>
                      Delete
                    </button>
                    <button type="button" className="btn-ghost btn-small" onClick={() => setConfirm(null)}>
                      Keep
                    </button>
                  </>
                ) : (
                  <>
                    <button type="button" className="btn-secondary btn-small" disabled={f.status === "error"} onClick={() => toChat(f)}>
                      Use in chat
                    </button>
                    <button type="button" className="btn-ghost btn-small" aria-label={`Delete ${f.filename}`} onClick={() => setConfirm(f.id)}>
                      Delete…
                    </button>
                  </>
                )}
              </td>
            </tr>
          )}
        />
      </section>
    </PageLayout>
  );
}

function Status({ file: f }: { file: UploadedFile }) {
  if (f.status === "processed") return <>Ready</>;
  if (f.status === "error") return <span className="error-text">{f.error ?? "Could not be read"}</span>;
  return (
    <>
      {f.chunks_total ? `Indexing ${f.chunks_indexed}/${f.chunks_total}` : "Indexing…"}
      {f.chunks_total ? <progress className="attachment-progress" max={f.chunks_total} value={f.chunks_indexed} aria-label={`Indexing ${f.filename}`} /> : null}
    </>
  );
}

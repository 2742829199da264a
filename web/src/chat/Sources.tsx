import { useState, type ReactNode } from "react";
import { fileContentUrl } from "../api/files.ts";
import type { Searched, Source } from "../api/sources.ts";
import { safeLinkUrl } from "../markdown/safeUrl.ts";

/**
 * What an answer read (issue 15): the line "Searched N pages · read N documents" above its
 * reasoning, which opens into the list of sources, and numbered chips under the finished answer.
 * Titles and snippets come from web pages and documents: shown as text, never as HTML, and web
 * links only to http(s) addresses, in a new tab without opener or referrer.
 */

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The stream's figures while it runs; after a reload, counted from the stored sources. */
export function searchSummary(sources: Source[], searched: Searched | null): string {
  const pages = searched?.pages ?? sources.filter((s) => s.kind === "web").length;
  const documents = searched?.documents ?? new Set(sources.filter((s) => s.kind === "file").map((s) => s.file_id ?? s.filename)).size;
  const parts: string[] = [];
  if (pages > 0 || documents === 0) parts.push(`Searched ${plural(pages, "page", "pages")}`);
  if (documents > 0) parts.push(`${parts.length === 0 ? "Read" : "read"} ${plural(documents, "document", "documents")}`);
  return parts.join(" · ");
}

function hostOf(url: string): string {
  try {
    return new URL(url).host.replace(/^www\./, "");
  } catch {
    return "";
  }
}

/** Where a source links: its page (http/https only) or the document's download; null: nowhere safe. */
function sourceHref(source: Source): { href: string; external: boolean } | null {
  if (source.kind === "file") return source.file_id ? { href: fileContentUrl(source.file_id), external: false } : null;
  const href = safeLinkUrl(source.url ?? "");
  return href && /^https?:/.test(href) ? { href, external: true } : null;
}

/** The second line of a source: the web page's host, or the document's file name. */
function origin(source: Source): string {
  return source.kind === "file" ? (source.filename ?? "document") : hostOf(source.url ?? "");
}

/** The host or file name beside the title, unless the title already says it. */
function Origin({ source }: { source: Source }) {
  const text = origin(source);
  return text && !(source.title ?? "").includes(text) ? <span className="source-origin">{text}</span> : null;
}

function SourceLink({ source, className, children }: { source: Source; className: string; children: ReactNode }) {
  const target = sourceHref(source);
  const label = `Source ${source.index}: ${source.title || origin(source)}`;
  if (!target) {
    return (
      <span className={className} aria-label={label}>
        {children}
      </span>
    );
  }
  return (
    <a
      className={className}
      href={target.href}
      aria-label={label}
      title={source.kind === "web" ? (source.url ?? undefined) : source.filename ?? undefined}
      {...(target.external ? { target: "_blank", rel: "noopener noreferrer" } : {})}
      data-source={source.index}
    >
      {children}
    </a>
  );
}

export function SearchedLine({ sources, searched }: { sources: Source[]; searched: Searched | null }) {
  const [open, setOpen] = useState(false);
  const summary = searchSummary(sources, searched);
  return (
    <section className="searched" data-testid="searched">
      <button type="button" className="reasoning-toggle" aria-expanded={open} onClick={() => setOpen(!open)} data-testid="searched-toggle" disabled={sources.length === 0}>
        <span className="chevron" aria-hidden>
          {open ? "▾" : "▸"}
        </span>
        <span data-testid="searched-summary">{summary}</span>
        {searched?.indexing ? <span className="searched-note"> · some documents are still being indexed</span> : null}
      </button>
      {open && sources.length > 0 ? (
        <ol className="searched-list" data-testid="searched-list">
          {sources.map((source) => (
            <li key={source.index}>
              <SourceLink source={source} className="searched-item">
                <span className="source-number">{source.index}</span>
                <span className="searched-title">{source.title || origin(source)}</span>
                <Origin source={source} />
              </SourceLink>
            </li>
          ))}
        </ol>
      ) : null}
    </section>
  );
}

export function SourceChips({ sources }: { sources: Source[] }) {
  if (sources.length === 0) return null;
  return (
    <nav className="source-chips" aria-label="Sources" data-testid="source-chips">
      {sources.map((source) => (
        <SourceLink key={source.index} source={source} className="source-chip">
          <span className="source-number">{source.index}</span>
          <span className="source-chip-title">{source.title || origin(source)}</span>
          <Origin source={source} />
        </SourceLink>
      ))}
    </nav>
  );
}

import type { Searched, Source } from "../search/source.ts";
import type { SearchedView, SourceView } from "./conversationTypes.ts";

/** A source on the wire (web app and API): snake_case, only the fields users see. */
export function presentSource(source: Source): SourceView {
  return {
    index: source.index,
    kind: source.kind,
    ...(source.url !== undefined ? { url: source.url } : {}),
    title: source.title,
    ...(source.fileId !== undefined ? { file_id: source.fileId } : {}),
    ...(source.filename !== undefined ? { filename: source.filename } : {}),
    snippet: source.snippet,
  };
}

export function presentSearched(searched: Searched): SearchedView {
  return { query: searched.query, pages: searched.pages, documents: searched.documents, indexing: searched.indexing };
}

/** An answer's sources as stored with it (messages.sources): the presented shape, as JSON. */
export function storedSources(sources: readonly Source[] | null | undefined): string | null {
  return sources && sources.length > 0 ? JSON.stringify(sources.map(presentSource)) : null;
}

/** The stored sources of an answer (null when it has none, or the column holds something unreadable). */
export function parseStoredSources(stored: string | null | undefined): SourceView[] | null {
  if (!stored) return null;
  try {
    const parsed: unknown = JSON.parse(stored);
    return Array.isArray(parsed) ? (parsed as SourceView[]) : null;
  } catch {
    return null;
  }
}

/**
 * What retrieval found for one answer, numbered as the answer cites it (`[1]`, `[2]`…): shared by
 * the pipeline (src/serving), the citations (citations.ts), the API presenters and the stored
 * answer (messages.sources). Camel-cased here; the wire shape is snake_case (src/presenters/sources.ts).
 */
export interface Source {
  /** 1-based: the `n` of `[n]` in the answer. */
  index: number;
  kind: "web" | "file";
  /** The page (web sources). */
  url?: string;
  title: string;
  /** The document (file sources). */
  fileId?: string;
  filename?: string;
  /** The passage shown for the source (its best passage, shortened). */
  snippet: string;
  /** Offsets of that passage in the document's extracted text (file sources). */
  start?: number;
  end?: number;
}

/** What was searched, for "Searched N pages / read N documents". */
export interface Searched {
  /** The query sent (the question, shortened). */
  query: string;
  /** Web pages read (fetched and used), 0 without web search. */
  pages: number;
  /** Documents searched, 0 without documents. */
  documents: number;
  /** True when some of the documents were still being indexed: only what was indexed was searched. */
  indexing: boolean;
}

import type { Source } from "./source.ts";

/**
 * Citations in an answer: the model cites its sources as `[1]`, `[2]` (or `[1, 2]`), as the prompt
 * insert (retrieve.ts) tells it to; each marker that names a source becomes an annotation in
 * OpenAI's shape. Web sources give `url_citation` (OpenAI's chat completions shape); documents
 * give `file_citation`, nested the same way so one parser reads both.
 *
 * `start_index` / `end_index` are the marker's span in the answer's `content` (end exclusive),
 * counted in Unicode code points, as OpenAI counts characters (a Python `str` index); a
 * JavaScript client slices with `Array.from(content).slice(start, end)`. Numbers that name no
 * source (`[7]` with three sources, a year in brackets) are plain text, not citations.
 */
export type Annotation =
  | { type: "url_citation"; url_citation: { url: string; title: string; start_index: number; end_index: number } }
  | { type: "file_citation"; file_citation: { file_id: string; filename: string; title: string; start_index: number; end_index: number } };

/** `[1]`, `[2, 3]`, `[1,2]`: small numbers only (no source list is that long). */
const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3}){0,9})\]/g;
/** A marker that may still be completed by the next delta: `[`, `[1`, `[1,`, `[12, 3`. */
const PARTIAL = /\[[\d,\s]{0,40}$/;

/** The annotations of a whole answer. */
export function annotate(content: string, sources: readonly Source[]): Annotation[] {
  const tracker = new CitationTracker(sources);
  tracker.push(content);
  tracker.finish();
  return tracker.annotations;
}

/**
 * Finds citations in a streamed answer, delta by delta: a marker split across deltas (`[` then
 * `1]`) is found once it is whole. `push` returns the annotations completed by that delta.
 */
export class CitationTracker {
  /** Every annotation found so far, in the order of the answer. */
  readonly annotations: Annotation[] = [];
  /** Text held back: the start of what may become a marker. */
  private pending = "";
  /** Code points of the content before `pending`. */
  private offset = 0;
  private readonly byIndex: Map<number, Source>;

  constructor(sources: readonly Source[]) {
    this.byIndex = new Map(sources.map((s) => [s.index, s]));
  }

  push(text: string): Annotation[] {
    if (this.byIndex.size === 0 || text === "") {
      this.offset += codePoints(this.pending + text);
      this.pending = "";
      return [];
    }
    const buffer = this.pending + text;
    const found: Annotation[] = [];
    let consumed = 0;
    let consumedPoints = 0;
    for (const match of buffer.matchAll(MARKER)) {
      const start = this.offset + consumedPoints + codePoints(buffer.slice(consumed, match.index));
      const end = start + codePoints(match[0]);
      for (const n of match[1]!.split(",").map((s) => Number(s.trim()))) {
        const source = this.byIndex.get(n);
        if (source) found.push(annotation(source, start, end));
      }
      consumedPoints = end - this.offset;
      consumed = match.index + match[0].length;
    }
    const rest = buffer.slice(consumed);
    const partial = PARTIAL.exec(rest);
    const keep = partial ? rest.slice(partial.index) : "";
    this.offset += consumedPoints + codePoints(rest.slice(0, rest.length - keep.length));
    this.pending = keep;
    this.annotations.push(...found);
    return found;
  }

  /** The answer ended: what was held back is plain text. */
  finish(): Annotation[] {
    this.offset += codePoints(this.pending);
    this.pending = "";
    return [];
  }
}

function annotation(source: Source, start: number, end: number): Annotation {
  if (source.kind === "file") {
    return {
      type: "file_citation",
      file_citation: { file_id: source.fileId ?? "", filename: source.filename ?? source.title, title: source.title, start_index: start, end_index: end },
    };
  }
  return { type: "url_citation", url_citation: { url: source.url ?? "", title: source.title, start_index: start, end_index: end } };
}

function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

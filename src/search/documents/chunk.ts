/**
 * Extracted text cut into passages for the index and for citations. The text is markdown-ish (the
 * extractors emit headings as `#` lines and blank lines between blocks), and the cuts follow it:
 * a heading always starts a new chunk and names the chunks under it; paragraphs are packed together
 * up to about `targetChars`, never past `maxChars`; only a paragraph longer than `maxChars` is cut
 * inside, at sentence ends (at a space, or anywhere, only when one "sentence" is itself too long).
 *
 * Each chunk's `start`/`end` are offsets into the text it was cut from, and its `text` is exactly
 * `text.slice(start, end)`: a citation can point back at the passage in the extracted document.
 * One pass over the text, linear in its length.
 */

export interface Chunk {
  ordinal: number;
  /** The heading the chunk sits under (the nearest one above it), without its `#` marks. */
  heading: string | null;
  text: string;
  start: number;
  end: number;
}

export interface ChunkOptions {
  targetChars?: number;
  maxChars?: number;
}

export const DEFAULT_TARGET_CHARS = 800;
export const DEFAULT_MAX_CHARS = 1500;

interface Block {
  start: number;
  end: number;
  /** Set when the block is a heading: its text. */
  heading: string | null;
}

export function chunkText(text: string, opts: ChunkOptions = {}): Chunk[] {
  const maxChars = Math.max(1, Math.floor(opts.maxChars ?? DEFAULT_MAX_CHARS));
  const targetChars = Math.min(maxChars, Math.max(1, Math.floor(opts.targetChars ?? DEFAULT_TARGET_CHARS)));
  const chunks: Chunk[] = [];
  const emit = (start: number, end: number, heading: string | null) => {
    if (end > start) chunks.push({ ordinal: chunks.length, heading, text: text.slice(start, end), start, end });
  };

  let heading: string | null = null;
  // The chunk being filled: from `start` to `end`; `body` once it holds more than headings.
  let open: { start: number; end: number; heading: string | null; body: boolean } | null = null;
  const close = () => {
    if (open) emit(open.start, open.end, open.heading);
    open = null;
  };

  for (const block of blocks(text)) {
    if (block.heading !== null) {
      // A heading after content starts a new chunk; headings in a row stay together with what follows.
      if (open?.body) close();
      heading = block.heading;
      if (open && block.end - open.start <= maxChars) {
        open.end = block.end;
        open.heading = heading;
      } else {
        close();
        open = { start: block.start, end: block.end, heading, body: false };
      }
      continue;
    }
    const length = block.end - block.start;
    if (length > maxChars) {
      if (open?.body) close();
      const pieces = splitLong(text, block.start, block.end, targetChars, maxChars);
      for (const [i, [start, end]] of pieces.entries()) {
        // The heading line(s) join the first piece when they fit.
        if (i === 0 && open && end - open.start <= maxChars) {
          emit(open.start, end, heading);
          open = null;
          continue;
        }
        close();
        // The last piece stays open: a short paragraph after it may join it.
        if (i === pieces.length - 1) open = { start, end, heading, body: true };
        else emit(start, end, heading);
      }
      continue;
    }
    if (open) {
      const size = open.end - open.start;
      const combined = block.end - open.start;
      const full = combined > maxChars || (open.body && combined > targetChars && size >= targetChars / 2);
      if (!full) {
        open.end = block.end;
        open.body = true;
        continue;
      }
      close();
    }
    open = { start: block.start, end: block.end, heading, body: true };
  }
  close();
  return chunks;
}

const HEADING = /^(#{1,6})[ \t]+(.*?)[ \t#]*$/;
const SETEXT_UNDERLINE = /^[ \t]*(=+|-+)[ \t]*$/;

/**
 * The text's blocks: runs of non-blank lines, with a `#` heading line always a block of its own
 * (and a line underlined with `===`/`---` a heading too). Offsets exclude the blank
 * space around each block.
 */
function* blocks(text: string): Generator<Block> {
  let blockStart = -1;
  let blockEnd = -1;
  let lines = 0;
  const finish = function* (): Generator<Block> {
    if (blockStart >= 0) yield { start: blockStart, end: blockEnd, heading: null };
    blockStart = -1;
    lines = 0;
  };
  let at = 0;
  while (at <= text.length) {
    let lineEnd = text.indexOf("\n", at);
    if (lineEnd < 0) lineEnd = text.length;
    const line = text.slice(at, lineEnd);
    const content = line.trim();
    if (content === "") {
      yield* finish();
    } else {
      const lead = line.length - line.trimStart().length;
      const trimmedEnd = at + line.trimEnd().length;
      const heading = HEADING.exec(content);
      if (heading) {
        yield* finish();
        // A `#` line with no words names nothing: a block of its own, but no heading.
        yield { start: at + lead, end: trimmedEnd, heading: heading[2]!.trim() || null };
      } else if (lines === 1 && SETEXT_UNDERLINE.test(line)) {
        // The line before, underlined: a heading.
        yield { start: blockStart, end: trimmedEnd, heading: text.slice(blockStart, blockEnd).trim() };
        blockStart = -1;
        lines = 0;
      } else {
        if (blockStart < 0) blockStart = at + lead;
        blockEnd = trimmedEnd;
        lines++;
      }
    }
    at = lineEnd + 1;
  }
  yield* finish();
}

/** Sentence ends: terminal punctuation, optional closing quotes or brackets, then whitespace. */
const SENTENCE_END = /[.!?…。！？][)"'”’»\]]*\s+/g;

/**
 * A paragraph longer than `maxChars` as pieces of at most `maxChars`: whole sentences packed up to
 * `targetChars`; a sentence longer than `maxChars` cut at the last space before the bound (or at
 * the bound). Offsets are absolute; no piece starts or ends with whitespace.
 */
function splitLong(text: string, start: number, end: number, targetChars: number, maxChars: number): Array<[number, number]> {
  // Where each sentence ends (just before the whitespace that follows it).
  const ends: number[] = [];
  SENTENCE_END.lastIndex = 0;
  const paragraph = text.slice(start, end);
  for (let m = SENTENCE_END.exec(paragraph); m; m = SENTENCE_END.exec(paragraph)) {
    ends.push(start + m.index + m[0].trimEnd().length);
  }
  ends.push(end);

  const pieces: Array<[number, number]> = [];
  let pieceStart = start;
  let pieceEnd = start;
  const push = (from: number, to: number) => {
    const [a, b] = trimmed(text, from, to);
    if (b > a) pieces.push([a, b]);
  };
  for (const sentenceEnd of ends) {
    if (sentenceEnd <= pieceEnd) continue;
    const size = pieceEnd - pieceStart;
    const combined = sentenceEnd - pieceStart;
    if (combined <= targetChars || (size < targetChars / 2 && combined <= maxChars)) {
      pieceEnd = sentenceEnd;
      continue;
    }
    if (size > 0) {
      push(pieceStart, pieceEnd);
      pieceStart = skipSpace(text, pieceEnd, end);
    }
    // The sentence alone: if it is still too long, cut it down to size.
    while (sentenceEnd - pieceStart > maxChars) {
      const cut = hardCut(text, pieceStart, maxChars);
      push(pieceStart, cut);
      pieceStart = skipSpace(text, cut, end);
    }
    pieceEnd = sentenceEnd;
  }
  if (pieceEnd > pieceStart) push(pieceStart, pieceEnd);
  return pieces;
}

/** Where to end a piece that starts at `from` and may hold `maxChars`: after its last space, or at the bound. */
function hardCut(text: string, from: number, maxChars: number): number {
  let bound = from + maxChars;
  const space = text.lastIndexOf(" ", bound);
  if (space > from + maxChars / 2) return space;
  // Never between the halves of a surrogate pair.
  const code = text.charCodeAt(bound - 1);
  if (code >= 0xd800 && code <= 0xdbff) bound--;
  return bound;
}

function skipSpace(text: string, at: number, end: number): number {
  while (at < end && /\s/.test(text[at]!)) at++;
  return at;
}

function trimmed(text: string, start: number, end: number): [number, number] {
  while (start < end && /\s/.test(text[start]!)) start++;
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  return [start, end];
}

/**
 * Names a conversation from its first exchange without another model call: the first line of the
 * user's question with markdown noise removed, cut at a word boundary; the answer stands in when the
 * question has no words (e.g. only a code block). Cheap and deterministic — a busy server never
 * spends a generation on a title.
 */

export const MAX_TITLE_LENGTH = 60;
const FALLBACK_TITLE = "New chat";

export function titleFromExchange(question: string, answer: string): string {
  return summarize(question) || summarize(answer) || FALLBACK_TITLE;
}

/**
 * How much of a text the title is looked for in. The markdown patterns below backtrack: over a
 * whole message (up to a million characters) one of "![" repeated took over a minute of the event
 * loop; over this prefix it takes milliseconds, and a title is found in the first lines anyway.
 */
const SCANNED_CHARS = 2000;

function summarize(whole: string): string {
  // Not ending on half a surrogate pair.
  const text = whole.length > SCANNED_CHARS ? whole.slice(0, SCANNED_CHARS).replace(/[\uD800-\uDBFF]$/, "") : whole;
  const plain = text
    .replace(/```[\s\S]*?(```|$)/g, " ") // code blocks say little about the topic
    .replace(/\$\$[\s\S]*?\$\$|\\\[[\s\S]*?\\\]/g, " ")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]*>/g, " ")
    .replace(/[#>*_`~|]+/g, " ");
  const line = plain
    .split("\n")
    .map((l) => l.replace(/\s+/g, " ").trim())
    .find((l) => /[\p{L}\p{N}]/u.test(l));
  if (!line) return "";
  // Latin sentence ends need a space after them ("3.14" is not one); CJK ones don't.
  const sentence = line.match(/^.*?(?:[.!?](?=\s|$)|[？！。])/u)?.[0] ?? line;
  return cut(sentence.replace(/[.。]$/u, ""), MAX_TITLE_LENGTH);
}

function cut(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  const head = chars.slice(0, max - 1).join("");
  const space = head.lastIndexOf(" ");
  return `${(space > max / 2 ? head.slice(0, space) : head).trimEnd()}…`;
}

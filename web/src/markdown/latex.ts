/**
 * R1 writes formulas as `\( … \)` and `\[ … \]` as often as `$ … $` and `$$ … $$`; remark-math only
 * knows the dollar forms, and takes `$$x$$` within a line as inline math. Rewrite the backslash
 * forms to dollars and put every display formula (`$$…$$`, `\[…\]`) on lines of its own, as LaTeX
 * displays it, leaving code (fenced blocks and inline spans) untouched: there these are literal text.
 */
export function normalizeMathDelimiters(markdown: string): string {
  return splitCode(markdown)
    .map((part) => (part.code ? part.text : rewrite(part.text)))
    .join("");
}

function rewrite(text: string): string {
  const display = (_m: string, inner: string) => `\n$$\n${inner.trim()}\n$$\n`;
  return text
    .replace(/\$\$([\s\S]+?)\$\$/g, display)
    .replace(/\\\[([\s\S]+?)\\\]/g, display)
    .replace(/\\\(([\s\S]+?)\\\)/g, (_m, inner: string) => `$${inner.trim()}$`);
}

interface Part {
  text: string;
  code: boolean;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/** Splits markdown into code and non-code runs: fenced blocks by line, then inline code spans. */
export function splitCode(markdown: string): Part[] {
  const parts: Part[] = [];
  const lines = markdown.split(/(?<=\n)/);
  let prose = "";
  let fence: string | null = null;
  let block = "";
  for (const line of lines) {
    if (fence === null) {
      const open = FENCE.exec(line);
      if (open) {
        parts.push(...splitInlineCode(prose));
        prose = "";
        fence = open[1]!;
        block = line;
      } else {
        prose += line;
      }
    } else {
      block += line;
      const close = FENCE.exec(line);
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length && line.trim() === close[1]) {
        parts.push({ text: block, code: true });
        fence = null;
        block = "";
      }
    }
  }
  // An unclosed fence (the answer is still streaming) is code up to the end.
  if (fence !== null) {
    parts.push(...splitInlineCode(prose), { text: block, code: true });
  } else {
    parts.push(...splitInlineCode(prose));
  }
  return parts.filter((p) => p.text !== "");
}

function splitInlineCode(text: string): Part[] {
  const parts: Part[] = [];
  const span = /(`+)[\s\S]*?[^`]\1(?!`)/g;
  let last = 0;
  for (const match of text.matchAll(span)) {
    parts.push({ text: text.slice(last, match.index), code: false }, { text: match[0], code: true });
    last = match.index! + match[0].length;
  }
  parts.push({ text: text.slice(last), code: false });
  return parts;
}

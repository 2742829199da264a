/**
 * The main text of an HTML page — the article, not its menus, navigation, footer or scripts —
 * through Mozilla's Readability over a linkedom DOM (no browser, no network: linkedom never loads
 * a resource). The result is markdown-ish: headings become `#` lines and blocks are separated by a
 * blank line, so the chunker (chunk.ts) can keep headings and paragraphs together.
 *
 * The walk over the DOM is iterative: a page nested ten thousand levels deep must not overflow the
 * stack here. Parsing cost still grows with the page, and faster than linearly with its nesting
 * (linkedom measured: 20,000 nested divs parse in 0.3 s, 100,000 in 17 s): callers run this on
 * untrusted pages only inside a worker with a timeout (extract.ts) or after bounding the page's size.
 */
import { Readability } from "@mozilla/readability";
import { parseHTML } from "linkedom";

/** The few DOM members the walk reads: linkedom's nodes, without the DOM lib's types. */
interface DomNode {
  nodeType: number;
  nodeName: string;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
}

const TEXT_NODE = 3;
const ELEMENT_NODE = 1;

/** Elements whose text is never content. */
const SKIPPED = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "SVG", "CANVAS", "IFRAME", "OBJECT", "HEAD", "BUTTON", "SELECT", "FORM"]);
/**
 * Page furniture. Readability keeps a short page's menus, so they are dropped from its article
 * too; a `<header>` only when the whole body is walked (inside an article it holds the title).
 */
const FURNITURE = new Set(["NAV", "FOOTER", "ASIDE", "MENU"]);
const BODY_FURNITURE = new Set([...FURNITURE, "HEADER"]);
/** Elements that start and end a block of their own. */
const BLOCKS = new Set([
  "P", "DIV", "SECTION", "ARTICLE", "MAIN", "BLOCKQUOTE", "PRE", "UL", "OL", "LI", "DL", "DT", "DD", "TABLE", "TR",
  "FIGURE", "FIGCAPTION", "ADDRESS", "DETAILS", "SUMMARY", "HR", "H1", "H2", "H3", "H4", "H5", "H6",
  "NAV", "FOOTER", "HEADER", "ASIDE", "MENU", "BODY", "HTML",
]);

/** Readability gives up (throws) past this many elements: a bound on hostile pages. */
const MAX_ELEMENTS = 100_000;
/**
 * Readability's scoring walks each candidate's ancestors, so its cost grows steeply with nesting
 * depth (measured: 1,000 nested divs took 35 s, 5,000 over 7 minutes). Real pages stay well under
 * this depth; a deeper one is read without Readability (the body minus its furniture).
 */
const MAX_READABILITY_DEPTH = 200;

export function extractHtmlMainText(html: string, url?: string): { title: string | null; text: string } {
  // linkedom builds a document only from a whole page; a fragment gets one around it.
  if (!/<html[\s>]/i.test(html.slice(0, 4096))) html = `<!doctype html><html><body>${html}</body></html>`;
  const { document } = parseHTML(html);
  const pageTitle = cleanInline(document.title ?? "") || null;
  let article: ReturnType<Readability<DomNode>["parse"]> = null;
  const root = document as unknown as { body: DomNode | null; documentElement: DomNode };
  if (exceedsDepth(root.documentElement, MAX_READABILITY_DEPTH)) {
    const text = domToMarkdownish(root.body ?? root.documentElement, BODY_FURNITURE);
    return { title: pageTitle ?? firstHeading(text), text };
  }
  try {
    // The serializer hands back the article's element itself: no HTML string to parse again.
    // `url` only resolves relative links, which the text does not keep; Readability reads it from
    // the document, so it is set there when given.
    if (url) setDocumentUrl(document, url);
    article = new Readability<DomNode>(document as never, { serializer: (node) => node as unknown as DomNode, maxElemsToParse: MAX_ELEMENTS }).parse();
  } catch (error) {
    if (error instanceof Error && /Aborting parsing/.test(error.message)) throw new Error(`the page has more than ${MAX_ELEMENTS} elements`);
    article = null;
  }
  const title = cleanInline(article?.title ?? "") || pageTitle;
  if (article?.content) {
    const text = domToMarkdownish(article.content, FURNITURE);
    if (text.trim()) return { title: title ?? firstHeading(text), text };
  }
  // No article found (a short page, a list): the body without its furniture. Readability changed
  // the document, so it is parsed again.
  const text = domToMarkdownish(bodyOf(html), BODY_FURNITURE);
  return { title: title ?? firstHeading(text), text };
}

/** A page without a `<title>` is named by its first heading. */
function firstHeading(text: string): string | null {
  return /^#{1,6} (.+)$/m.exec(text)?.[1] ?? null;
}

function bodyOf(html: string): DomNode {
  const fresh = parseHTML(html).document as unknown as { body: DomNode | null; documentElement: DomNode };
  return fresh.body ?? fresh.documentElement;
}

/** Whether any element lies deeper than `limit` below `root` (iterative: the tree may be very deep). */
function exceedsDepth(root: DomNode, limit: number): boolean {
  const stack: Array<[DomNode, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > limit) return true;
    const children = node.childNodes;
    for (let i = 0; i < children.length; i++) {
      if (children[i]!.nodeType === ELEMENT_NODE) stack.push([children[i]!, depth + 1]);
    }
  }
  return false;
}

/** An HTML fragment (e.g. mammoth's conversion of a DOCX) as markdown-ish text. */
export function htmlFragmentToMarkdownish(html: string): string {
  const { document } = parseHTML(`<!doctype html><html><body>${html}</body></html>`);
  return domToMarkdownish((document as unknown as { body: DomNode }).body, new Set());
}

function setDocumentUrl(document: unknown, url: string): void {
  try {
    Object.defineProperty(document, "documentURI", { value: url, configurable: true });
    Object.defineProperty(document, "baseURI", { value: url, configurable: true });
  } catch {
    // Only used for relative links, which the text does not keep.
  }
}

/**
 * The text of a DOM subtree: inline text joined with collapsed spaces, blocks separated by a
 * blank line, `<h1>`…`<h6>` as `#` lines, list items as `- ` lines, `<br>` as a line break, `<pre>`
 * text kept as it is.
 */
export function domToMarkdownish(root: DomNode, skipped: ReadonlySet<string>): string {
  const blocks: string[] = [];
  let line = "";
  // A block's mark (`## `, `- `): kept until the block's first text, so `<li><p>x</p></li>` is `- x`.
  let prefix = "";
  let verbatim = false;
  const flush = () => {
    const text = verbatim ? line.replace(/^\n+|\s+$/g, "") : cleanInline(line);
    line = "";
    if (!text) return;
    blocks.push(prefix + text);
    prefix = "";
  };
  // Depth-first with an explicit stack; an "exit" entry closes a block element after its children.
  const stack: Array<{ node: DomNode; exit: boolean; pre: boolean }> = [{ node: root, exit: false, pre: false }];
  while (stack.length > 0) {
    const { node, exit, pre } = stack.pop()!;
    if (exit) {
      flush();
      prefix = "";
      verbatim = pre;
      continue;
    }
    if (node.nodeType === TEXT_NODE) {
      line += pre ? (node.textContent ?? "") : (node.textContent ?? "").replace(/\s+/g, " ");
      continue;
    }
    if (node.nodeType !== ELEMENT_NODE && node !== root) continue;
    const name = node.nodeName.toUpperCase();
    if (SKIPPED.has(name) || skipped.has(name)) continue;
    if (name === "BR") {
      line += "\n";
      continue;
    }
    const isPre = pre || name === "PRE";
    if (BLOCKS.has(name)) {
      flush();
      verbatim = isPre;
      const heading = /^H([1-6])$/.exec(name);
      if (heading) prefix = "#".repeat(Number(heading[1])) + " ";
      else if (name === "LI") prefix = "- ";
      // The exit entry restores the enclosing block's mode (a `<pre>` ends inside a `<div>`).
      stack.push({ node, exit: true, pre });
    } else if (name === "TD" || name === "TH") {
      line += " ";
    }
    const children = node.childNodes;
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]!, exit: false, pre: isPre });
  }
  flush();
  return blocks.join("\n\n");
}

/** Inline text: runs of spaces collapsed, line breaks (from `<br>`) kept, empty lines dropped. */
function cleanInline(text: string): string {
  return text
    .split("\n")
    .map((part) => part.replace(/[ \t\u00a0\r\f\v]+/g, " ").trim())
    .filter((part) => part !== "")
    .join("\n");
}

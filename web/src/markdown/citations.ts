import type { Link, Parent, PhrasingContent, Root, Text } from "mdast";
import { safeLinkUrl } from "./safeUrl.ts";

/**
 * Citation numbers in an answer (`[1]`, `[2]`, `[1, 3]`) as links to the sources it read: a remark
 * transform over the markdown tree, so it only ever touches text nodes. Code, inline code, math and
 * raw HTML are other node types and stay as they are; text already inside a link is left alone (no
 * link in a link). The links it makes are ordinary mdast links: react-markdown's urlTransform and
 * the Link component (safe protocols, new tab, no opener/referrer) apply to them like any other,
 * and nothing is ever parsed as HTML. Numbers with no source stay plain text.
 */
export interface CitationTarget {
  index: number;
  title: string;
  /** An absolute http(s) URL: the web page, or the document's download address. */
  href: string;
}

export interface CitationOptions {
  targets: CitationTarget[];
}

/** `[1]`, `[12]`, `[1, 2]`, `[1,2,3]`: at most a few digits each, so a long run of digits is not a citation. */
const CITATION = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
const SKIP = new Set(["link", "linkReference", "definition", "code", "inlineCode", "html", "math", "inlineMath"]);

export default function remarkCitations(options: CitationOptions) {
  const byIndex = new Map<number, CitationTarget>();
  for (const target of options.targets) {
    const href = safeLinkUrl(target.href);
    if (href) byIndex.set(target.index, { ...target, href });
  }
  return (tree: Root) => {
    if (byIndex.size > 0) walk(tree, byIndex);
  };
}

function walk(node: Parent, targets: Map<number, CitationTarget>): void {
  const out: Parent["children"] = [];
  let changed = false;
  for (const child of node.children) {
    if (child.type === "text") {
      const parts = split(child, targets);
      if (parts) {
        out.push(...(parts as Parent["children"]));
        changed = true;
        continue;
      }
    } else if ("children" in child && !SKIP.has(child.type)) {
      walk(child as Parent, targets);
    }
    out.push(child);
  }
  if (changed) node.children = out;
}

/** The text with its citations as links, or null when it has none that point anywhere. */
function split(node: Text, targets: Map<number, CitationTarget>): PhrasingContent[] | null {
  const value = node.value;
  const parts: PhrasingContent[] = [];
  let last = 0;
  for (const match of value.matchAll(CITATION)) {
    const numbers = match[1]!.split(",").map((n) => Number(n.trim()));
    // All or nothing: "[1, 9]" with no source 9 stays text, as the model wrote it.
    if (!numbers.every((n) => targets.has(n))) continue;
    const start = match.index!;
    if (start > last) parts.push({ type: "text", value: value.slice(last, start) });
    for (const n of numbers) parts.push(citation(targets.get(n)!));
    last = start + match[0].length;
  }
  if (parts.length === 0) return null;
  if (last < value.length) parts.push({ type: "text", value: value.slice(last) });
  return parts;
}

/** <sup class="citation"><a href=… title=…>n</a></sup>, built as tree nodes (mdast-util-to-hast reads `data.hName`). */
function citation(target: CitationTarget): PhrasingContent {
  const link: Link = {
    type: "link",
    url: target.href,
    title: target.title,
    children: [{ type: "text", value: String(target.index) }],
    data: { hProperties: { className: ["citation-link"], ariaLabel: `Source ${target.index}: ${target.title}`, dataCitation: String(target.index) } },
  };
  // An element of its own kind: to-hast turns an unknown node with children into its `hName`.
  return { type: "citation", children: [link], data: { hName: "sup", hProperties: { className: ["citation"] } } } as unknown as PhrasingContent;
}

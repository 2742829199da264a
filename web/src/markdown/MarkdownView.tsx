import { memo, useMemo, useState, type ComponentProps, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import remarkMath from "remark-math";
import type { PluggableList } from "unified";
import type { Source } from "../api/sources.ts";
import { CopyButton } from "../components/CopyButton.tsx";
import remarkCitations, { type CitationTarget } from "./citations.ts";
import { normalizeMathDelimiters } from "./latex.ts";
import { useRehypePlugins } from "./plugins.ts";
import { urlTransform } from "./safeUrl.ts";

/**
 * Model output as GFM markdown with code highlighting and LaTeX. Safety rules (model output may
 * carry prompt-injected content):
 * - no raw HTML: without rehype-raw, react-markdown shows HTML as plain text;
 * - links only to http, https, mailto (urlTransform), opened in a new tab without opener/referrer;
 * - images are never fetched until the user clicks, so output cannot exfiltrate data through URLs;
 * - KaTeX's `trust` stays off (katexPlugin.ts), so \href, \url and \html… commands cannot make
 *   links or attributes.
 * This module is a chunk of its own, loaded with the first message shown (Markdown.tsx); KaTeX and
 * highlight.js are chunks loaded when an answer first needs them (plugins.ts).
 */

type HastNode = { type: string; value?: string; children?: HastNode[]; properties?: Record<string, unknown> };

function textOf(node: HastNode | undefined): string {
  if (!node) return "";
  if (node.type === "text") return node.value ?? "";
  return (node.children ?? []).map(textOf).join("");
}

function CodeBlock({ node, children }: ComponentProps<"pre"> & { node?: HastNode }) {
  const code = node?.children?.find((c) => c.type === "element");
  const classes = (code?.properties?.className as string[] | undefined) ?? [];
  const language = classes.find((c) => c.startsWith("language-"))?.slice("language-".length);
  return (
    <div className="code-block">
      <div className="code-block-bar">
        <span className="code-block-lang">{language ?? "text"}</span>
        <CopyButton text={() => textOf(code).replace(/\n$/, "")} label="Copy code" />
      </div>
      <pre>{children}</pre>
    </div>
  );
}

function Link({ href, children, className, title, ...rest }: ComponentProps<"a"> & { "data-citation"?: string }) {
  if (!href) return <span className="link-blocked" title="Link removed: only http, https and mailto links are allowed">{children}</span>;
  if (href.startsWith("#")) return <a href={href}>{children}</a>;
  // A citation (citations.ts) carries its source's title and a label; other links only their address.
  const citation = rest["data-citation"];
  return (
    <a
      href={href}
      target="_blank"
      rel="noopener noreferrer nofollow"
      className={className}
      title={title}
      aria-label={citation ? rest["aria-label"] : undefined}
      data-citation={citation}
    >
      {children}
    </a>
  );
}

function ImagePlaceholder({ src, alt }: ComponentProps<"img">) {
  const [load, setLoad] = useState(false);
  const url = typeof src === "string" ? src : "";
  if (!url) return <span className="image-blocked">[image{alt ? `: ${alt}` : ""} — blocked address]</span>;
  const host = new URL(url).host;
  if (load) return <img src={url} alt={alt ?? ""} referrerPolicy="no-referrer" className="md-image" />;
  return (
    <button type="button" className="image-placeholder" onClick={() => setLoad(true)} title={url}>
      Click to load image from {host}
      {alt ? <span className="image-placeholder-alt"> ({alt})</span> : null}
    </button>
  );
}

const components: Components = {
  pre: CodeBlock as Components["pre"],
  a: Link,
  img: ImagePlaceholder,
  table: ({ children }) => (
    <div className="table-wrap">
      <table>{children}</table>
    </div>
  ),
};

const remarkPlugins: PluggableList = [remarkGfm, remarkMath];

/** Where source n's citation links: the page, or the document's download (absolute, as link rules want). */
function citationTargets(sources: Source[]): CitationTarget[] {
  const targets: CitationTarget[] = [];
  for (const source of sources) {
    const href = source.kind === "file" && source.file_id ? new URL(`/api/files/${encodeURIComponent(source.file_id)}/content`, window.location.origin).href : (source.url ?? "");
    if (href) targets.push({ index: source.index, title: source.title || source.filename || href, href });
  }
  return targets;
}

const MarkdownView = memo(function MarkdownView({ text, sources }: { text: string; sources?: Source[] | null | undefined }): ReactNode {
  const { plugins, pending } = useRehypePlugins(text);
  // `[n]` becomes a link to source n only when the answer has sources (citations.ts).
  const remark = useMemo<PluggableList>(
    () => (sources && sources.length > 0 ? [...remarkPlugins, [remarkCitations, { targets: citationTargets(sources) }]] : remarkPlugins),
    [sources],
  );
  return (
    <div className="markdown" data-pending={pending ? "" : undefined}>
      <ReactMarkdown remarkPlugins={remark} rehypePlugins={plugins} components={components} urlTransform={urlTransform}>
        {normalizeMathDelimiters(text)}
      </ReactMarkdown>
    </div>
  );
});

export default MarkdownView;

import { memo, useState, type ComponentProps, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import remarkMath from "remark-math";
import { CopyButton } from "../components/CopyButton.tsx";
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

function Link({ href, children }: ComponentProps<"a">) {
  if (!href) return <span className="link-blocked" title="Link removed: only http, https and mailto links are allowed">{children}</span>;
  if (href.startsWith("#")) return <a href={href}>{children}</a>;
  return (
    <a href={href} target="_blank" rel="noopener noreferrer nofollow">
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

const remarkPlugins = [remarkGfm, remarkMath];

const MarkdownView = memo(function MarkdownView({ text }: { text: string }): ReactNode {
  const { plugins, pending } = useRehypePlugins(text);
  return (
    <div className="markdown" data-pending={pending ? "" : undefined}>
      <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={plugins} components={components} urlTransform={urlTransform}>
        {normalizeMathDelimiters(text)}
      </ReactMarkdown>
    </div>
  );
});

export default MarkdownView;

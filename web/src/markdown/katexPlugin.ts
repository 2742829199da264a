import "katex/dist/katex.min.css";
import rehypeKatex from "rehype-katex";
import type { PluggableList } from "unified";

/**
 * LaTeX through KaTeX, loaded on first use (plugins.ts). A formula KaTeX cannot parse shows as red
 * source text instead of failing the whole message; `trust` stays off, so \href, \url and \html…
 * commands cannot make links or attributes.
 */
export const plugin: PluggableList[number] = [rehypeKatex, { throwOnError: false, errorColor: "var(--danger)", strict: "ignore", trust: false, maxSize: 20, maxExpand: 200 }];

import rehypeHighlight from "rehype-highlight";
import type { PluggableList } from "unified";

/** Code colours through highlight.js, loaded on first use (plugins.ts); only blocks that name their language. */
export const plugin: PluggableList[number] = [rehypeHighlight, { detect: false, ignoreMissing: true }];

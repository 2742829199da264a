import { useEffect, useState } from "react";
import type { PluggableList } from "unified";

/**
 * KaTeX and highlight.js are most of the markdown renderer's weight, and most answers need neither:
 * each is a chunk of its own, fetched the first time an answer has math (or a fenced code block
 * with a language), and kept for the page's life. Until it arrives the text shows unrendered —
 * math as its source, code without colours — and then re-renders.
 */
type Heavy = "katex" | "highlight";

const loaders: Record<Heavy, () => Promise<{ plugin: PluggableList[number] }>> = {
  katex: () => import("./katexPlugin.ts"),
  highlight: () => import("./highlightPlugin.ts"),
};
const loaded = new Map<Heavy, PluggableList[number]>();
const loading = new Map<Heavy, Promise<void>>();

function load(name: Heavy): Promise<void> {
  let promise = loading.get(name);
  if (!promise) {
    promise = loaders[name]().then(
      (module) => void loaded.set(name, module.plugin),
      // A failed fetch (offline): let a later render try again; the text stays readable meanwhile.
      () => void loading.delete(name),
    );
    loading.set(name, promise);
  }
  return promise;
}

/** Which heavy plugins `text` needs. Math: any $, \( or \[; code: a fence with a language name. */
export function heavyNeeded(text: string): Heavy[] {
  const needed: Heavy[] = [];
  if (/\$|\\\(|\\\[/.test(text)) needed.push("katex");
  if (/(```|~~~)[ \t]*[\w+#.-]/.test(text)) needed.push("highlight");
  return needed;
}

/** The rehype plugins for `text` that are here, and whether some it needs are still on their way. */
export function useRehypePlugins(text: string): { plugins: PluggableList; pending: boolean } {
  const needed = heavyNeeded(text);
  const missing = needed.filter((name) => !loaded.has(name));
  const [, setVersion] = useState(0);
  const key = missing.join(",");
  useEffect(() => {
    if (key === "") return;
    let live = true;
    void Promise.all(missing.map(load)).then(() => live && setVersion((v) => v + 1));
    return () => {
      live = false;
    };
  }, [key]);
  // Always in the same order (math, then code), whichever arrived first.
  const plugins = (["katex", "highlight"] as const).filter((name) => needed.includes(name) && loaded.has(name)).map((name) => loaded.get(name)!);
  return { plugins, pending: missing.length > 0 };
}

import { lazy } from "react";

/**
 * The thread's message view and the markdown renderer are chunks of their own, so that the sign-in
 * page and an empty chat paint with the smallest script (budget: test/web-budget.test.ts). Both are
 * fetched as soon as a conversation is opened, and otherwise once the page has loaded, so that the
 * first answer rarely waits for them.
 */
const loadMessageView = () => import("./MessageView.tsx");
const loadMarkdown = () => import("../markdown/MarkdownView.tsx");

export const MessageView = lazy(async () => ({ default: (await loadMessageView()).MessageView }));

let prefetched = false;
export function prefetchThread(): void {
  if (prefetched) return;
  prefetched = true;
  // A failed fetch (offline) is retried by React.lazy when the view is first rendered.
  loadMessageView().catch(() => (prefetched = false));
  loadMarkdown().catch(() => (prefetched = false));
}

/** Prefetches once the page has finished loading, so the first paint never shares the network with it. */
export function prefetchThreadAfterLoad(): () => void {
  let timer: number | undefined;
  const schedule = () => (timer = window.setTimeout(prefetchThread, 0));
  if (document.readyState === "complete") schedule();
  else window.addEventListener("load", schedule, { once: true });
  return () => {
    window.removeEventListener("load", schedule);
    window.clearTimeout(timer);
  };
}

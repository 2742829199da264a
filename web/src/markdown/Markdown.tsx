import { lazy, Suspense } from "react";
import type { Source } from "../api/sources.ts";

/**
 * Model output as markdown (MarkdownView.tsx). The renderer is a chunk of its own: the sign-in page
 * and an empty chat never need it, and the first paint should not wait for it. While it loads, the
 * text shows as plain text — React escapes it; nothing is ever rendered as HTML.
 */
const MarkdownView = lazy(() => import("./MarkdownView.tsx"));

/** `sources`: what the answer read; its `[n]` become links to them. */
export function Markdown({ text, sources }: { text: string; sources?: Source[] | null | undefined }) {
  return (
    <Suspense
      fallback={
        <div className="markdown markdown-plain" data-pending="">
          {text}
        </div>
      }
    >
      <MarkdownView text={text} sources={sources} />
    </Suspense>
  );
}

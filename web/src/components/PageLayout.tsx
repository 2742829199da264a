import type { ReactNode } from "react";

/** A signed-in page beside the chat's sidebar (settings, keys, admin): scrolling area, readable width, one heading. */
export function PageLayout({ title, children }: { title: string; children: ReactNode }) {
  return (
    <div className="page">
      <div className="page-inner">
        <h1>{title}</h1>
        {children}
      </div>
    </div>
  );
}

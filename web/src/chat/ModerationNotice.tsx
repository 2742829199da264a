import type { ReactNode } from "react";
import type { ModerationView } from "../../../src/presenters/conversationTypes.ts";

/**
 * What the server's moderation policies did to an answer, shown with it (part of the lazily loaded
 * message view). Nothing is ever taken away silently: a warning sits above the answer; a withheld
 * answer shows the notice in its place, and whatever had already been shown before the policy
 * tripped stays on the page, folded behind the notice, one click away — after the stream ends and
 * after a reload alike (the server stores it with the message).
 */
export function ModerationNotices({ moderation }: { moderation: ModerationView }) {
  return (
    <div className="moderation-notices">
      {moderation.interventions.map((i, n) => (
        <div
          key={n}
          className={`moderation-notice moderation-${i.action}`}
          role="status"
          data-testid="moderation-notice"
          data-action={i.action}
          data-stage={i.stage}
        >
          {i.notice}
        </div>
      ))}
    </div>
  );
}

/** The text shown before a withhold, folded behind its notice (a native <details>: keyboard and screen-reader ready). */
export function WithheldText({ children }: { children: ReactNode }) {
  return (
    <details className="moderation-shown" data-testid="moderation-shown">
      <summary data-testid="moderation-shown-toggle">Show what was shown before it was withheld</summary>
      <div className="moderation-shown-text">{children}</div>
    </details>
  );
}

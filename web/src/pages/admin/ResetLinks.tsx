import { useState, type ReactNode } from "react";
import type { User } from "../../api/auth.ts";
import { describeError } from "../../api/http.ts";
import { issuePasswordReset } from "../../api/security.ts";
import { ShownOnce } from "../../components/ShownOnce.tsx";
import { formatTime } from "../../components/time.ts";

/**
 * "Reset link" on the Users tab: the server makes a one-time link (an hour, single use) and the admin
 * copies it, shown once, to hand to the user by whatever channel they trust (no e-mail is sent).
 */
export function useResetLinks(onError: (error: string | null) => void): { issue: (user: User) => Promise<void>; view: ReactNode } {
  const [shown, setShown] = useState<{ username: string; link: string; expiresAt: string } | null>(null);

  const issue = async (user: User) => {
    try {
      const made = await issuePasswordReset(user.id);
      // Without publicUrl configured the server knows no origin to put in front: this page's is the one the user reaches.
      setShown({ username: user.username, link: made.url ?? `${window.location.origin}${made.path}`, expiresAt: made.expires_at });
      onError(null);
    } catch (e) {
      onError(describeError(e));
    }
  };

  const view = shown ? (
    <ShownOnce
      label={`Password reset link for ${shown.username} (works once, until ${formatTime(shown.expiresAt)}):`}
      secret={shown.link}
      onDone={() => setShown(null)}
    />
  ) : null;
  return { issue, view };
}

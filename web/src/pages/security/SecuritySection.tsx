import { listSessions } from "../../api/account.ts";
import { useRemoteList } from "../../components/useRemoteList.ts";
import { ChangePasswordCard } from "./ChangePasswordCard.tsx";
import { SessionsCard } from "./SessionsCard.tsx";
import { TwoFactorCard } from "./TwoFactorCard.tsx";

/**
 * Settings → Security: password, two-step verification, signed-in sessions. The session list is
 * held here because the other two end sessions (a new password or turning on the second factor
 * signs every other browser out) and the list must show it.
 */
export function SecuritySection() {
  const sessions = useRemoteList(listSessions, []);
  return (
    <>
      <ChangePasswordCard onSessionsChanged={sessions.reload} />
      <TwoFactorCard onSessionsChanged={sessions.reload} />
      <SessionsCard sessions={sessions} />
    </>
  );
}

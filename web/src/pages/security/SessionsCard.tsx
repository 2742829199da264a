import { endSession } from "../../api/account.ts";
import type { Session } from "../../api/auth.ts";
import { DataTable } from "../../components/DataTable.tsx";
import { formatTime } from "../../components/time.ts";
import type { RemoteList } from "../../components/useRemoteList.ts";

/** Every session of this account that still works, this device's marked; any other can be ended. */
export function SessionsCard({ sessions }: { sessions: RemoteList<Session> }) {
  return (
    <section className="card" aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Signed-in sessions</h2>
      {/* No empty message: the list always holds at least this browser's own session. */}
      <DataTable
        list={sessions}
        testId="sessions-table"
        columns={["Browser", "Address", "Signed in", "Last seen", ""]}
        row={(s) => (
          <tr key={s.id} data-session-id={s.id} data-current={s.current ? "true" : undefined}>
            <td className="small">{s.user_agent ?? "unknown"}</td>
            <td>{s.ip ?? "—"}</td>
            <td>{formatTime(s.created_at)}</td>
            <td>{formatTime(s.last_seen_at)}</td>
            <td>
              {s.current ? (
                <span className="badge badge-ok">this device</span>
              ) : (
                <button type="button" className="btn-ghost btn-small" onClick={() => void sessions.change(() => endSession(s.id))}>
                  Revoke
                </button>
              )}
            </td>
          </tr>
        )}
      />
    </section>
  );
}

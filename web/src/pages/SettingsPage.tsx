import { endSession, listSessions, type User } from "../api/auth.ts";
import { DataTable } from "../components/DataTable.tsx";
import { PageLayout } from "../components/PageLayout.tsx";
import { formatTime } from "../components/time.ts";
import { useRemoteList } from "../components/useRemoteList.ts";
import type { ThemeChoice } from "../state/theme.ts";

export function SettingsPage({ user, theme, onTheme }: { user: User; theme: ThemeChoice; onTheme: (choice: ThemeChoice) => void }) {
  const sessions = useRemoteList(listSessions, []);

  return (
    <PageLayout title="Settings">
      <section className="card">
        <h2>Account</h2>
        <table className="table">
          <tbody>
            <tr>
              <th>User name</th>
              <td>{user.username}</td>
            </tr>
            <tr>
              <th>E-mail</th>
              <td>{user.email ?? "—"}</td>
            </tr>
            <tr>
              <th>Role</th>
              <td>{user.role}</td>
            </tr>
            <tr>
              <th>Plan</th>
              <td>{user.plan_id ?? "—"}</td>
            </tr>
            <tr>
              <th>Member since</th>
              <td>{formatTime(user.created_at)}</td>
            </tr>
          </tbody>
        </table>
      </section>
      <section className="card">
        <h2>Appearance</h2>
        <div className="row form">
          <label>
            Theme
            <select value={theme} onChange={(e) => onTheme(e.target.value as ThemeChoice)} aria-label="Theme">
              <option value="system">Same as the system</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
        </div>
      </section>
      <section className="card">
        <h2>Signed-in sessions</h2>
        {/* No empty message: the list always holds at least this browser's own session. */}
        <DataTable
          list={sessions}
          columns={["Browser", "IP", "Last seen", ""]}
          row={(s) => (
            <tr key={s.id}>
              <td>{s.user_agent ?? "unknown"}</td>
              <td>{s.ip ?? "—"}</td>
              <td>{formatTime(s.last_seen_at)}</td>
              <td>
                {s.current ? (
                  <span className="badge badge-ok">this browser</span>
                ) : (
                  <button type="button" className="btn-ghost btn-small" onClick={() => void sessions.change(() => endSession(s.id))}>
                    Sign out
                  </button>
                )}
              </td>
            </tr>
          )}
        />
      </section>
    </PageLayout>
  );
}

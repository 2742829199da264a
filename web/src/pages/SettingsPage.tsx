import { useCallback, useEffect, useState } from "react";
import { endSession, listSessions, type Session, type User } from "../api/auth.ts";
import { describeError } from "../api/http.ts";
import { formatTime } from "../components/time.ts";
import type { ThemeChoice } from "../state/theme.ts";

export function SettingsPage({ user, theme, onTheme }: { user: User; theme: ThemeChoice; onTheme: (choice: ThemeChoice) => void }) {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    listSessions()
      .then((r) => setSessions(r.data))
      .catch((e) => setError(describeError(e)));
  }, []);
  useEffect(load, [load]);

  const end = async (id: string) => {
    try {
      await endSession(id);
      load();
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <div className="page">
      <div className="page-inner">
        <h1>Settings</h1>
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
          {error ? (
            <div className="error-text small" role="alert">
              {error}
            </div>
          ) : null}
          {sessions === null && !error ? <div className="muted">Loading…</div> : null}
          {sessions ? (
            <div className="table-scroll">
              <table className="table">
                <thead>
                  <tr>
                    <th>Browser</th>
                    <th>IP</th>
                    <th>Last seen</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {sessions.map((s) => (
                    <tr key={s.id}>
                      <td>{s.user_agent ?? "unknown"}</td>
                      <td>{s.ip ?? "—"}</td>
                      <td>{formatTime(s.last_seen_at)}</td>
                      <td>
                        {s.current ? (
                          <span className="badge badge-ok">this browser</span>
                        ) : (
                          <button type="button" className="btn-ghost btn-small" onClick={() => void end(s.id)}>
                            Sign out
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
        </section>
      </div>
    </div>
  );
}

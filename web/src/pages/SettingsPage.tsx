import type { User } from "../api/auth.ts";
import { PageLayout } from "../components/PageLayout.tsx";
import { formatTime } from "../components/time.ts";
import type { ThemeChoice } from "../state/theme.ts";
import { SecuritySection } from "./security/SecuritySection.tsx";

export function SettingsPage({ user, theme, onTheme }: { user: User; theme: ThemeChoice; onTheme: (choice: ThemeChoice) => void }) {
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
      {/* Password, two-step verification and sessions: web/src/pages/security/. */}
      <SecuritySection />
    </PageLayout>
  );
}

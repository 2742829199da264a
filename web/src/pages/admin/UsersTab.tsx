import { useState } from "react";
import { changeUser, listUsers, setRole } from "../../api/admin.ts";
import type { User } from "../../api/auth.ts";
import { describeError } from "../../api/http.ts";
import { formatTime } from "../../components/time.ts";
import { usePaged } from "./usePaged.ts";

const STATUS_BADGE: Record<User["status"], string> = { active: "badge-ok", pending: "badge-warn", disabled: "badge-bad" };

export function UsersTab({ currentUserId }: { currentUserId: string }) {
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const { items, hasMore, more, reload, error, setError } = usePaged((cursor) => listUsers({ q: q.trim() || undefined, status: status || undefined, cursor }), [q, status]);

  const act = async (run: () => Promise<unknown>) => {
    try {
      await run();
      reload();
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <section className="card">
      <div className="row form">
        <label>
          Search
          <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="user name or e-mail" aria-label="Search users" />
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Filter by status">
            <option value="">any</option>
            <option value="active">active</option>
            <option value="pending">pending approval</option>
            <option value="disabled">disabled</option>
          </select>
        </label>
      </div>
      {error ? (
        <div className="error-text small" role="alert">
          {error}
        </div>
      ) : null}
      {items === null && !error ? <div className="muted">Loading…</div> : null}
      {items?.length === 0 ? <div className="muted">No user matches.</div> : null}
      {items && items.length > 0 ? (
        <div className="table-scroll">
          <table className="table" data-testid="users-table">
            <thead>
              <tr>
                <th>User</th>
                <th>Status</th>
                <th>Role</th>
                <th>Joined</th>
                <th>Last sign-in</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((u) => (
                <tr key={u.id} data-username={u.username}>
                  <td>
                    {u.username}
                    {u.email ? <div className="small muted">{u.email}</div> : null}
                  </td>
                  <td>
                    <span className={`badge ${STATUS_BADGE[u.status]}`}>{u.status}</span>
                  </td>
                  <td>
                    <select
                      value={u.role}
                      aria-label={`Role of ${u.username}`}
                      disabled={u.id === currentUserId}
                      onChange={(e) => void act(() => setRole(u.id, e.target.value as User["role"]))}
                    >
                      <option value="user">user</option>
                      <option value="admin">admin</option>
                    </select>
                  </td>
                  <td>{formatTime(u.created_at)}</td>
                  <td>{formatTime(u.last_login_at)}</td>
                  <td>
                    {u.status === "pending" ? (
                      <button type="button" className="btn-primary btn-small" onClick={() => void act(() => changeUser(u.id, "approve"))}>
                        Approve
                      </button>
                    ) : null}
                    {u.status === "active" && u.id !== currentUserId ? (
                      <button type="button" className="btn-ghost btn-small" onClick={() => void act(() => changeUser(u.id, "disable"))}>
                        Disable
                      </button>
                    ) : null}
                    {u.status === "disabled" ? (
                      <button type="button" className="btn-ghost btn-small" onClick={() => void act(() => changeUser(u.id, "enable"))}>
                        Enable
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {hasMore ? (
        <button type="button" className="btn-secondary" onClick={more}>
          Load more
        </button>
      ) : null}
    </section>
  );
}

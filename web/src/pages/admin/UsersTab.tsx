import { useState } from "react";
import { changeUser, listUsers, setRole } from "../../api/admin.ts";
import type { User } from "../../api/auth.ts";
import { DataTable } from "../../components/DataTable.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { formatTime } from "../../components/time.ts";
import { useRemoteList } from "../../components/useRemoteList.ts";
import { useResetLinks } from "./ResetLinks.tsx";

const STATUS_BADGE: Record<User["status"], string> = { active: "badge-ok", pending: "badge-warn", disabled: "badge-bad" };

export function UsersTab({ currentUserId }: { currentUserId: string }) {
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const users = useRemoteList(
    (cursor) => listUsers({ q: q.trim() || undefined, status: status || undefined, cursor }),
    [q, status],
  );
  const resetLinks = useResetLinks(users.setError);

  return (
    <section className="card">
      <div className="row form">
        <LabelledInput label="Search" type="search" value={q} onValue={setQ} placeholder="user name or e-mail" aria-label="Search users" />
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
      {resetLinks.view}
      <DataTable
        list={users}
        empty="No user matches."
        testId="users-table"
        columns={["User", "Status", "Role", "Joined", "Last sign-in", ""]}
        row={(u) => (
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
                onChange={(e) => void users.change(() => setRole(u.id, e.target.value as User["role"]))}
              >
                <option value="user">user</option>
                <option value="admin">admin</option>
              </select>
            </td>
            <td>{formatTime(u.created_at)}</td>
            <td>{formatTime(u.last_login_at)}</td>
            <td>
              {u.status === "pending" ? (
                <button type="button" className="btn-primary btn-small" onClick={() => void users.change(() => changeUser(u.id, "approve"))}>
                  Approve
                </button>
              ) : null}
              {u.status === "active" && u.id !== currentUserId ? (
                <button type="button" className="btn-ghost btn-small" onClick={() => void users.change(() => changeUser(u.id, "disable"))}>
                  Disable
                </button>
              ) : null}
              {u.status !== "disabled" && u.id !== currentUserId ? (
                <button type="button" className="btn-ghost btn-small" onClick={() => void resetLinks.issue(u)}>
                  Reset link
                </button>
              ) : null}
              {u.status === "disabled" ? (
                <button type="button" className="btn-ghost btn-small" onClick={() => void users.change(() => changeUser(u.id, "enable"))}>
                  Enable
                </button>
              ) : null}
            </td>
          </tr>
        )}
      />
    </section>
  );
}

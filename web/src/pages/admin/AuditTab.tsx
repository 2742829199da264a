import { listAudit } from "../../api/admin.ts";
import { formatTime } from "../../components/time.ts";
import { usePaged } from "./usePaged.ts";

export function AuditTab() {
  const { items, hasMore, more, error } = usePaged((cursor) => listAudit(cursor), []);
  return (
    <section className="card">
      <h2>Audit log</h2>
      <p className="small muted">Every administrative action: who did what, to what, when.</p>
      {error ? (
        <div className="error-text small" role="alert">
          {error}
        </div>
      ) : null}
      {items === null && !error ? <div className="muted">Loading…</div> : null}
      {items?.length === 0 ? <div className="muted">Nothing yet.</div> : null}
      {items && items.length > 0 ? (
        <div className="table-scroll">
          <table className="table" data-testid="audit-table">
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Target</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <td>{formatTime(e.created_at)}</td>
                  <td>{e.actor_user_id ?? "command line"}</td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td>{e.target_type ? `${e.target_type} ${e.target_id ?? ""}` : "—"}</td>
                  <td className="small">
                    <code>{JSON.stringify(e.details)}</code>
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

import { listAudit } from "../../api/admin.ts";
import { DataTable } from "../../components/DataTable.tsx";
import { formatTime } from "../../components/time.ts";
import { useRemoteList } from "../../components/useRemoteList.ts";

export function AuditTab() {
  const entries = useRemoteList(listAudit, []);
  return (
    <section className="card">
      <h2>Audit log</h2>
      <p className="small muted">Every administrative action: who did what, to what, when.</p>
      <DataTable
        list={entries}
        empty="Nothing yet."
        testId="audit-table"
        columns={["When", "Who", "Action", "Target", "Details"]}
        row={(e) => (
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
        )}
      />
    </section>
  );
}

import { useState } from "react";
import { listModeration, type ModerationPolicy } from "../../api/moderation.ts";
import { DataTable } from "../../components/DataTable.tsx";
import { formatTime } from "../../components/time.ts";
import { useRemoteList } from "../../components/useRemoteList.ts";

/**
 * Admin → Moderation (a chunk of its own): the active policies, as configured (`moderation` in the
 * config), and every intervention, newest first — refused questions, flagged and withheld answers,
 * from the API and the web app alike — with what tripped it (admins only: it may quote withheld text).
 */
export function ModerationTab() {
  const [policies, setPolicies] = useState<ModerationPolicy[] | null>(null);
  const [policy, setPolicy] = useState("");
  const events = useRemoteList(async (cursor?: string) => {
    const page = await listModeration({ policy: policy || undefined, cursor });
    setPolicies(page.policies);
    return page;
  }, [policy]);
  return (
    <>
      <section className="card">
        <h2>Moderation policies</h2>
        <p className="small muted">
          Set in the server's configuration (<code>moderation.policies</code>). Users see every intervention: a notice on the answer, and the
          policy names in the model picker.
        </p>
        {policies === null ? null : policies.length === 0 ? (
          <div className="muted">No moderation policy is configured.</div>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="moderation-policies">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Checks</th>
                  <th>Action</th>
                  <th>Models</th>
                  <th>Looks for</th>
                  <th>Reason shown</th>
                </tr>
              </thead>
              <tbody>
                {policies.map((p) => (
                  <tr key={p.name}>
                    <td>
                      <code>{p.name}</code>
                    </td>
                    <td>{p.apply_to === "both" ? "input and output" : p.apply_to}{p.apply_to !== "input" && !p.check_reasoning ? " (not reasoning)" : ""}</td>
                    <td>{p.action}</td>
                    <td>{p.models ? p.models.join(", ") : "all"}</td>
                    <td className="small">{looksFor(p)}</td>
                    <td className="small">{p.reason ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="card">
        <h2>Interventions</h2>
        <label className="small">
          Policy{" "}
          <select value={policy} onChange={(e) => setPolicy(e.target.value)} aria-label="Filter by policy">
            <option value="">all</option>
            {(policies ?? []).map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <DataTable
          list={events}
          empty="No intervention yet."
          testId="moderation-events"
          columns={["When", "Policy", "Action", "Where", "Model", "What tripped it", "Who"]}
          row={(e) => (
            <tr key={e.id}>
              <td>{formatTime(e.created_at)}</td>
              <td>
                <code>{e.policy}</code>
              </td>
              <td>{e.action}</td>
              <td>{e.stage === "input" ? "question" : `${e.channel ?? "answer"} after ${e.offset} characters`}</td>
              <td>{e.model}</td>
              <td className="small">
                {e.source}
                {e.matched ? (
                  <>
                    : <code>{e.matched}</code>
                  </>
                ) : null}
              </td>
              <td className="small">
                {e.user_id ?? "local"}
                {e.conversation_id ? " (web app)" : e.api_key_id ? " (API key)" : ""}
              </td>
            </tr>
          )}
        />
      </section>
    </>
  );
}

function looksFor(p: ModerationPolicy): string {
  const parts: string[] = [];
  if (p.block_words > 0) parts.push(`${p.block_words} blocked word${p.block_words === 1 ? "" : "s"}`);
  if (p.block_patterns.length > 0) parts.push(`patterns ${p.block_patterns.map((x) => `/${x}/`).join(" ")}`);
  if (p.allow_words > 0) parts.push(`${p.allow_words} allowed`);
  if (p.classifier) parts.push(`classifier: ${p.classifier}${p.fail_closed ? " (fails closed)" : ""}`);
  return parts.join("; ");
}

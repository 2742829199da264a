import { useState, type FormEvent } from "react";
import { createKey, listKeys, revokeKey } from "../api/keys.ts";
import type { ModelInfo } from "../api/models.ts";
import { DataTable } from "../components/DataTable.tsx";
import { LabelledInput } from "../components/LabelledInput.tsx";
import { PageLayout } from "../components/PageLayout.tsx";
import { ShownOnce } from "../components/ShownOnce.tsx";
import { formatTime } from "../components/time.ts";
import { useRemoteList } from "../components/useRemoteList.ts";

/** The user's keys for the /v1 API: create (shown once), list, revoke. */
export function ApiKeysPage({ models }: { models: ModelInfo[] | null }) {
  const keys = useRemoteList(listKeys, []);
  const [created, setCreated] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const [scope, setScope] = useState<string[]>([]);
  const [confirm, setConfirm] = useState<string | null>(null);

  const create = (event: FormEvent) => {
    event.preventDefault();
    keys.setError(null);
    void keys.change(async () => {
      const key = await createKey({ name: name.trim(), models: scope.length > 0 ? scope : null, expires_in_days: days ? Number(days) : null });
      setCreated(key.key);
      setName("");
      setDays("");
      setScope([]);
    });
  };
  const revoke = (id: string) => {
    setConfirm(null);
    void keys.change(() => revokeKey(id));
  };

  return (
    <PageLayout title="API keys">
      <p className="muted">
        Keys let programs use Sputnik's OpenAI-compatible API at <code>{location.origin}/v1</code>, for example with the official OpenAI SDKs.
      </p>
      <section className="card">
        <h2>Create a key</h2>
        {created ? <ShownOnce label="Your new key:" secret={created} onDone={() => setCreated(null)} /> : null}
        <form className="form" onSubmit={create}>
          <div className="row">
            <LabelledInput label="Name" value={name} onValue={setName} required maxLength={100} placeholder="e.g. laptop script" />
            <LabelledInput label="Expires after (days, optional)" type="number" min={1} max={3650} value={days} onValue={setDays} />
          </div>
          {models && models.length > 0 ? (
            <fieldset className="row" style={{ border: "none", padding: 0, margin: 0 }}>
              <legend className="small muted">Only these models (none checked: every model)</legend>
              {models.map((m) => (
                <label key={m.id} className="checkbox">
                  <input
                    type="checkbox"
                    checked={scope.includes(m.id)}
                    onChange={(e) => setScope(e.target.checked ? [...scope, m.id] : scope.filter((x) => x !== m.id))}
                  />
                  {m.id}
                </label>
              ))}
            </fieldset>
          ) : null}
          <div>
            <button type="submit" className="btn-primary" disabled={name.trim() === ""}>
              Create key
            </button>
          </div>
        </form>
      </section>
      <section className="card">
        <h2>Your keys</h2>
        <DataTable
          list={keys}
          empty="No keys yet."
          testId="keys-table"
          columns={["Name", "Key", "Models", "Last used", "Expires", ""]}
          row={(k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>{k.models ? k.models.join(", ") : "all"}</td>
              <td>{formatTime(k.last_used_at)}</td>
              <td>{k.expired ? <span className="badge badge-bad">expired</span> : formatTime(k.expires_at)}</td>
              <td>
                {confirm === k.id ? (
                  <>
                    <button type="button" className="btn-danger btn-small" onClick={() => revoke(k.id)}>
                      Revoke
                    </button>
                    <button type="button" className="btn-ghost btn-small" onClick={() => setConfirm(null)}>
                      Keep
                    </button>
                  </>
                ) : (
                  <button type="button" className="btn-ghost btn-small" onClick={() => setConfirm(k.id)}>
                    Revoke…
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

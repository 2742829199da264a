import { useCallback, useEffect, useState, type FormEvent } from "react";
import { describeError } from "../api/http.ts";
import { createKey, listKeys, revokeKey, type ApiKey } from "../api/keys.ts";
import type { ModelInfo } from "../api/models.ts";
import { ShownOnce } from "../components/ShownOnce.tsx";
import { formatTime } from "../components/time.ts";

/** The user's keys for the /v1 API: create (shown once), list, revoke. */
export function ApiKeysPage({ models }: { models: ModelInfo[] | null }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const [scope, setScope] = useState<string[]>([]);
  const [confirm, setConfirm] = useState<string | null>(null);

  const load = useCallback(() => {
    listKeys()
      .then((r) => setKeys(r.data))
      .catch((e) => setError(describeError(e)));
  }, []);
  useEffect(load, [load]);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const key = await createKey({ name: name.trim(), models: scope.length > 0 ? scope : null, expires_in_days: days ? Number(days) : null });
      setCreated(key.key);
      setName("");
      setDays("");
      setScope([]);
      load();
    } catch (e) {
      setError(describeError(e));
    }
  };
  const revoke = async (id: string) => {
    setConfirm(null);
    try {
      await revokeKey(id);
      load();
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <div className="page">
      <div className="page-inner">
        <h1>API keys</h1>
        <p className="muted">
          Keys let programs use Sputnik's OpenAI-compatible API at <code>{location.origin}/v1</code>, for example with the official OpenAI SDKs.
        </p>
        <section className="card">
          <h2>Create a key</h2>
          {created ? <ShownOnce label="Your new key:" secret={created} onDone={() => setCreated(null)} /> : null}
          <form className="form" onSubmit={create}>
            <div className="row">
              <label>
                Name
                <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} placeholder="e.g. laptop script" />
              </label>
              <label>
                Expires after (days, optional)
                <input type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
              </label>
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
          {error ? (
            <div className="error-text small" role="alert">
              {error}
            </div>
          ) : null}
          {keys === null && !error ? <div className="muted">Loading…</div> : null}
          {keys?.length === 0 ? <div className="muted">No keys yet.</div> : null}
          {keys && keys.length > 0 ? (
            <div className="table-scroll">
              <table className="table" data-testid="keys-table">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Key</th>
                    <th>Models</th>
                    <th>Last used</th>
                    <th>Expires</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {keys.map((k) => (
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
                            <button type="button" className="btn-danger btn-small" onClick={() => void revoke(k.id)}>
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
